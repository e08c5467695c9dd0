//! Hostile ids and replays against the real parts (DynamoDB Local, the simulator over HTTP): a
//! signed click whose operator id is `all`, holds markup, or is 40,000 characters long shows no
//! mention and no injected tag, keeps the card under 30 KB, and its job is delivered, not dead.
//! A legacy click replayed with another `X-Refresh-Token` is claimed once.

use std::sync::Arc;

use cardbot::cards::MAX_CARD_BYTES;
use cardbot::function_url;
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{CardStore, JobStatus};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{function_url_event, response_bytes, Bot};
use cardbot_tests::simulator::{ids, SimConfig, Simulator};
use serde_json::json;

async fn bot_for_user(user_open_id: &str, delivery: &str) -> Bot<DynamoStore> {
    let sim = Simulator::start(SimConfig {
        user_open_id: user_open_id.to_owned(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    Bot::start(
        Arc::new(sim),
        Arc::new(dynamodb_local::fresh_store().await),
        delivery,
    )
    .await
}

#[tokio::test]
async fn hostile_operator_ids_never_become_markup_and_the_job_is_delivered() {
    let hostile = [
        "all".to_owned(),
        "</at><font color='red'>x</font>".to_owned(),
        "ou_x></at><font color='red'>x</font><at id=all>".to_owned(),
        "ou_".to_owned() + &"a".repeat(40_000),
    ];
    for delivery in ["entity", "message"] {
        for id in &hostile {
            let bot = bot_for_user(id, delivery).await;
            let card = bot.clicked_card().await;
            let summary = bot.run_post_answer(&card).await;
            assert_eq!(summary.done, 1, "{delivery} {:.40}: {summary:?}", id);
            assert_eq!(bot.post_answer_job(&card).await.status, JobStatus::Done);
            let shown = bot.sim.card(&card).unwrap();
            let json = shown.card.to_string();
            assert!(shown.text.contains("请假通过"), "{}", shown.text);
            assert!(json.len() <= MAX_CARD_BYTES, "{} bytes", json.len());
            for injected in ["<at id=all", "<font", "</at><", "aaaaaaaaaaaaaaaaaaaa"] {
                assert!(
                    !json.contains(injected),
                    "{delivery} {injected} in {json:.300}"
                );
            }
            assert!(!json.contains("<at "), "no mention at all: {json:.300}");
            let state = bot.store.get_card(&card).await.unwrap().unwrap();
            assert!(state.status.ends_with("_approved"), "{}", state.status);
        }
    }
}

#[tokio::test]
async fn a_well_formed_operator_is_mentioned() {
    let bot = bot_for_user(ids::USER_OPEN_ID, "entity").await;
    let card = bot.clicked_card().await;
    let json = bot.sim.card(&card).unwrap().card.to_string();
    assert!(
        json.contains(&format!("<at id={}></at>", ids::USER_OPEN_ID)),
        "{json}"
    );
}

#[tokio::test]
async fn a_legacy_click_replayed_with_another_refresh_token_is_claimed_once() {
    let bot = bot_for_user(ids::USER_OPEN_ID, "message").await;
    let card = bot.approval_card().await;
    let first = bot
        .sim
        .click_card_legacy(&bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    assert!(first.card_updated, "{:?}", first.delivery.response_body);
    let before = bot.store.get_card(&card).await.unwrap().unwrap();
    let original = bot
        .sim
        .deliveries()
        .into_iter()
        .rev()
        .find(|d| d.kind == "card_callback_legacy")
        .expect("the legacy callback");
    let replay = bot
        .sim
        .redeliver_with_header(&bot.card_url, &original, "X-Refresh-Token", "forged-9999")
        .await;
    assert_eq!(replay.status, Some(200), "{}", replay.response_body);
    // A duplicate is answered empty; a second claim would answer "already handled" (a toast).
    assert_eq!(
        replay.response_json,
        Some(json!({})),
        "{}",
        replay.response_body
    );
    let after = bot.store.get_card(&card).await.unwrap().unwrap();
    assert_eq!(after.version, before.version, "no second transition");
    assert_eq!(
        after.update_token, before.update_token,
        "the token is not replaced"
    );
}

#[tokio::test]
async fn odd_query_strings_and_paths_get_an_answer_never_a_panic() {
    let bot = bot_for_user(ids::USER_OPEN_ID, "entity").await;
    let challenge = json!({
        "type": "url_verification",
        "challenge": "c-1",
        "token": ids::VERIFICATION_TOKEN,
    })
    .to_string();
    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    for (query, path) in [
        ("a<b\"c", "/"),
        ("a b=c d", "/ x"),
        ("%zz=%", "/%zz"),
        ("a=1&a=2&&=&b", "//..//"),
        (&*"q=".repeat(5_000), "/"),
    ] {
        for body in [challenge.as_bytes(), b"{not json".as_slice()] {
            let mut event = function_url_event(&headers, body);
            event["rawQueryString"] = json!(query);
            event["rawPath"] = json!(path);
            event["requestContext"]["http"]["path"] = json!(path);
            event["queryStringParameters"] = json!({ "a": "<b\"c", "%zz": "%" });
            // What `function_url::run` does with the event in Lambda (lambda_http's own
            // conversion panics on these).
            let request = function_url::request_from_event(event.clone()).unwrap();
            let again = function_url::request_from_event(event.clone()).unwrap();
            let answers = [
                bot.event_callback.handle(request).await,
                bot.card_action.handle(again).await,
            ];
            for answer in answers {
                let status = answer.status().as_u16();
                let expected = if body == challenge.as_bytes() {
                    200
                } else {
                    400
                };
                assert_eq!(status, expected, "{query:.20} {path}");
                let event = function_url::response_event(&answer);
                assert_eq!(event["statusCode"], status);
                if status == 200 {
                    assert_eq!(
                        serde_json::from_slice::<serde_json::Value>(&response_bytes(&answer))
                            .unwrap(),
                        json!({"challenge": "c-1"})
                    );
                }
            }
        }
    }
}
