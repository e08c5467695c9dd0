//! Hot path under criterion: what each request costs us before any I/O.
//! Results land in `target/criterion/hot_path/<id>/new/estimates.json`; the report reads the medians.

use std::sync::Arc;
use std::time::Duration;

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use sha2::Digest;

use cardbot::approval::views;
use cardbot::approval::{self, SentCard};
use cardbot::config::CardDelivery;
use cardbot::config::Config;
use cardbot::entry::card_action::CardAction;
use cardbot::entry::event_callback::EventCallback;
use cardbot::feishu::SystemClock;
use cardbot::store::memory::MemoryStore;
use cardbot::store::{now_millis, CardStore};
use cardbot::webhook::{self, Inbound};
use cardbot_bench::fake_feishu::FakeFeishu;
use cardbot_bench::fixtures::{self, SignedRequest, Vectors};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};

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

fn group(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group("hot_path");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    group
}

fn webhook_and_cards(c: &mut Criterion) {
    let v = Vectors::load().unwrap_or_else(|e| panic!("{e}"));
    let challenge = fixtures::encrypted_challenge(&v.webhook).unwrap_or_else(|e| panic!("{e}"));
    let mut group = group(c);
    group.bench_function("event_verify_decrypt_parse", |b| {
        b.iter(|| verify_and_dispatch(&v, &v.event))
    });
    group.bench_function("card_verify_decrypt_parse", |b| {
        b.iter(|| verify_and_dispatch(&v, &v.card))
    });
    // Where the event's time goes: the signature, the decrypt, and the JSON of the plaintext.
    let key = v
        .webhook
        .encrypt_key
        .clone()
        .unwrap_or_else(|| panic!("no key"));
    let header = |name: &str| {
        v.event.headers[name]
            .to_str()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let (timestamp, nonce) = (
        header(webhook::HEADER_TIMESTAMP),
        header(webhook::HEADER_NONCE),
    );
    let encrypt = serde_json::from_slice::<serde_json::Value>(&v.event.body)
        .ok()
        .and_then(|b| b["encrypt"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let plaintext = v.event_plaintext.to_string();
    // The floor: SHA-256 over the body (the signature) and AES-256-CBC over the ciphertext, with the
    // key already derived and nothing parsed. No verifier can do less for an encrypted request.
    let ciphertext = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &encrypt)
        .unwrap_or_else(|e| panic!("vector encrypt: {e}"));
    let aes_key: [u8; 32] = sha2::Sha256::digest(key.expose().as_bytes()).into();
    group.bench_function("floor_sha256", |b| {
        b.iter(|| sha2::Sha256::digest(black_box(&v.event.body))[0])
    });
    group.bench_function("floor_aes_cbc", |b| {
        b.iter_batched_ref(
            || ciphertext.clone(),
            |raw| {
                let (iv, data) = raw.split_at_mut(16);
                cbc::Decryptor::<aes::Aes256>::new(&aes_key.into(), (&*iv).into())
                    .decrypt_padded_mut::<Pkcs7>(black_box(data))
                    .map(|p| p.len())
                    .unwrap_or_else(|e| panic!("floor decrypt: {e}"))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("event_part_signature", |b| {
        b.iter(|| {
            webhook::signature_sha256(&timestamp, &nonce, &key, black_box(&v.event.body)).len()
        })
    });
    group.bench_function("event_part_decrypt", |b| {
        b.iter(|| {
            webhook::decrypt(&key, black_box(&encrypt))
                .map(|p| p.len())
                .unwrap_or_default()
        })
    });
    group.bench_function("event_part_json", |b| {
        b.iter(|| {
            serde_json::from_str::<webhook::MessageReceive>(black_box(&plaintext))
                .map(|m| m.event.message.message_id.len())
                .unwrap_or_else(|e| panic!("plaintext: {e}"))
        })
    });
    // The same plaintext read with nothing kept: what any JSON reader must pay. The typed parse
    // above minus this is what the wire types themselves cost (field matching, owned strings).
    group.bench_function("event_part_json_scan", |b| {
        b.iter(|| {
            serde_json::from_str::<serde::de::IgnoredAny>(black_box(&plaintext))
                .unwrap_or_else(|e| panic!("plaintext: {e}"))
        })
    });
    group.bench_function("challenge_answer", |b| {
        b.iter(|| verify_and_dispatch(&v, &challenge))
    });
    group.bench_function("approval_card_build_serialize", |b| {
        b.iter(|| {
            serde_json::to_string(&views::pending_card(
                &cardbot::approval::definition::Catalog::builtin(),
            ))
            .map(|s| s.len())
            .unwrap_or_default()
        })
    });
    // Approval definitions: checking a file (`cardbot-admin definitions validate`, `make run`'s
    // start) and drawing a definition's form (each click that opens one).
    let file = include_str!("../../examples/definitions.yaml");
    group.bench_function("definitions_file_check", |b| {
        b.iter(|| {
            cardbot::approval::load_definitions(black_box(file))
                .map(|set| set.definitions.len())
                .unwrap_or_else(|e| panic!("example file: {e:?}"))
        })
    });
    let expense = cardbot::approval::load_definitions(file)
        .unwrap_or_else(|e| panic!("example file: {e:?}"))
        .definitions
        .remove(0);
    group.bench_function("definition_form_build_serialize", |b| {
        b.iter(|| {
            serde_json::to_string(&views::form_card(black_box(&expense)))
                .map(|s| s.len())
                .unwrap_or_default()
        })
    });
    group.finish();
}

/// The functions' settings as the bench runs them; the webhook is the vectors' (`v.webhook`).
fn config() -> Config {
    Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "bench".to_owned()))
        .unwrap_or_else(|e| panic!("bench config: {e}"))
}

fn request(signed: &SignedRequest) -> lambda_http::Request {
    cardbot_tests::harness::lambda_request(&fixtures::function_url_event(signed, "/"))
}

/// Whole handlers on MemoryStore and an in-process Feishu: each iteration is a new delivery
/// (fresh ids, so no dedup shortcut); signing and the Lambda event parse are setup, not measured.
fn handlers(c: &mut Criterion) {
    let v = Vectors::load().unwrap_or_else(|e| panic!("{e}"));
    let config = config();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let store = Arc::new(MemoryStore::new());
    let feishu = Arc::new(FakeFeishu::new());
    let events = EventCallback::new(
        &config,
        v.webhook.clone(),
        store.clone(),
        feishu.clone(),
        Arc::new(SystemClock),
    );
    let cards = CardAction::new(
        &config,
        v.webhook.clone(),
        store.clone(),
        Arc::new(SystemClock),
    );
    let mut n = 0_u64;
    let mut group = group(c);
    group.bench_function("event_handler", |b| {
        b.iter_batched(
            || {
                n += 1;
                request(&v.fresh_event(&format!("om_bench_event_{n:012}"), now_millis()))
            },
            |req| {
                let response = rt.block_on(events.handle(req));
                assert_eq!(response.status(), 200);
            },
            BatchSize::SmallInput,
        )
    });
    let (events_run, calls_per_event) = (n, feishu.calls());
    group.bench_function("card_handler", |b| {
        b.iter_batched(
            || {
                n += 1;
                let message_id = format!("om_bench_card_{n:012}");
                let now = now_millis();
                let sent = SentCard {
                    message_id: message_id.clone(),
                    chat_id: "oc_5ad11d72b830411d72b836c20".into(),
                    requester_open_id: "ou_84aad35d084aa403a838cf73ee18467".into(),
                    source_message_id: format!("om_src_{n:012}"),
                    card_id: Some("7355372766134157313".into()),
                    delivery: CardDelivery::Entity,
                    in_p2p: true,
                    tenant: None,
                };
                let state = approval::new_card_state(&sent, now);
                rt.block_on(store.create_card(&state))
                    .unwrap_or_else(|e| panic!("create card: {e}"));
                request(&v.fresh_click(&message_id, &format!("ev_click_{n:012}"), now))
            },
            |req| {
                let response = rt.block_on(cards.handle(req));
                assert_eq!(response.status(), 200);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    // Only when the event handler ran (a filter may have skipped it).
    assert!(
        events_run == 0 || calls_per_event > 0,
        "the event handler never called Feishu"
    );
}

criterion_group!(benches, webhook_and_cards, handlers);
criterion_main!(benches);
