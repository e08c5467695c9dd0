//! Hot path under criterion: what each request costs us before any I/O.
//! Results land in `target/criterion/hot_path/<id>/new/estimates.json`; the report reads the medians.

use std::time::Duration;

use cardbot::webhook::{self, Inbound};
use cardbot_bench::fixtures::{self, SignedRequest, Vectors};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// verify + decrypt + parse, then the dispatch a handler does on the typed request.
fn verify_and_dispatch(v: &Vectors, request: &SignedRequest) -> usize {
    match webhook::verify(
        &v.webhook,
        &request.headers,
        black_box(&request.body),
        v.now,
    ) {
        Ok(Inbound::MessageReceive(m)) => m.event.message.message_id.len(),
        Ok(Inbound::CardAction(c)) => c.header.event_id.len(),
        Ok(Inbound::Challenge(c)) => c.response_body().len(),
        Ok(_) => 1,
        Err(e) => panic!("vector rejected: {e}"),
    }
}

fn hot_path(c: &mut Criterion) {
    let v = Vectors::load().unwrap_or_else(|e| panic!("{e}"));
    let challenge = fixtures::encrypted_challenge(&v.webhook).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("hot_path");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    group.bench_function("event_verify_decrypt_parse", |b| {
        b.iter(|| verify_and_dispatch(&v, &v.event))
    });
    group.bench_function("card_verify_decrypt_parse", |b| {
        b.iter(|| verify_and_dispatch(&v, &v.card))
    });
    group.bench_function("challenge_answer", |b| {
        b.iter(|| verify_and_dispatch(&v, &challenge))
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
