//! Nothing approved by nobody, private requests kept private, failures that page someone: on
//! DynamoDB Local and the simulator over HTTP, in both delivery modes. Assertions are on what the
//! simulator received (every revision of a card, every callback answer, every text) and what the
//! table holds.

use std::sync::Arc;
use std::time::Duration;

use cardbot::approval::{fields, ApprovalData};
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{CardStore, JobStatus, JobStore};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{leave_form, Bot};
use cardbot_tests::simulator::{ids, ChatKind, SimConfig, SimUser, Simulator, OTHER_USER_OPEN_ID};
use serde_json::{json, Value};

const DELIVERIES: [&str; 2] = ["entity", "message"];

async fn bot(delivery: &str, settings: &[(&str, &str)]) -> Bot<DynamoStore> {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let store = Arc::new(dynamodb_local::fresh_store().await);
    Bot::start_with(sim, store, delivery, settings).await
}

/// No approver source (`APPROVER_FROM_LEADER=false`, no open_ids) and `fallback`.
async fn without_approvers(delivery: &str, fallback: &str) -> Bot<DynamoStore> {
    let settings = [
        ("APPROVAL_FALLBACK", fallback),
        ("APPROVER_FROM_LEADER", "false"),
    ];
    bot(delivery, &settings).await
}

/// One configured approver: the simulator's added user.
async fn with_approver(delivery: &str) -> (Bot<DynamoStore>, SimUser) {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approver = sim.add_users(1).remove(0);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let settings = [("APPROVER_OPEN_IDS", approver.open_id.as_str())];
    (
        Bot::start_with(sim, store, delivery, &settings).await,
        approver,
    )
}

fn cards_in(bot: &Bot<DynamoStore>, chat: &str) -> Vec<String> {
    bot.bot_messages(chat)
        .into_iter()
        .filter(|m| m.msg_type == "interactive")
        .map(|m| m.message_id)
        .collect()
}

fn texts_in(bot: &Bot<DynamoStore>, chat: &str) -> Vec<String> {
    bot.bot_messages(chat)
        .into_iter()
        .filter(|m| m.msg_type == "text")
        .map(|m| {
            let content: Value = serde_json::from_str(&m.content).unwrap();
            content["text"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// `审批` in `chat`; the card it answers with.
async fn ask(bot: &Bot<DynamoStore>, chat: ChatKind, chat_id: &str) -> String {
    let asked = bot
        .sim
        .send_user_message(&bot.event_url, chat, "审批")
        .await;
    assert_eq!(asked.status, Some(200), "{}", asked.response_body);
    cards_in(bot, chat_id).pop().expect("the approval card")
}

/// Runs the updater until no job is left to do now (each sweep may queue the next step).
async fn settle(bot: &Bot<DynamoStore>) {
    for _ in 0..4 {
        let summary = bot.sweep().await;
        if summary.claimed == 0 {
            break;
        }
    }
}

#[tokio::test]
async fn simulated_fallback_approves_in_p2p_and_on_a_group_card_labelled_automatic() {
    for delivery in DELIVERIES {
        let bot = without_approvers(delivery, "simulated").await;
        for (chat, chat_id) in [
            (ChatKind::P2p, ids::P2P_CHAT_ID),
            (ChatKind::Group, ids::GROUP_CHAT_ID),
        ] {
            let card = ask(&bot, chat, chat_id).await;
            let clicked = bot
                .sim
                .click_card(&bot.card_url, &card, json!({"type": "leave"}))
                .await
                .unwrap();
            let toast = clicked.toast.as_ref().unwrap()["content"].clone();
            assert!(toast.as_str().unwrap().contains("模拟审批"), "{toast}");
            // The post-answer job, run by the stream about a second later (well within 15 s).
            bot.sim.advance(Duration::from_secs(3));
            bot.run_post_answer(&card).await;
            let shown = bot.sim.card_text(&card).unwrap();
            assert!(shown.contains("请假通过"), "{delivery} {chat:?}: {shown}");
            assert!(shown.contains("并非真人审批"), "labelled: {shown}");
            let state = bot.store.get_card(&card).await.unwrap().unwrap();
            assert_eq!(state.status, "leave_approved");
            assert!(ApprovalData::from_value(&state.data).unwrap().automatic);
        }
        // 我的申请 says it too.
        bot.sim
            .send_user_message(&bot.event_url, ChatKind::P2p, "我的申请")
            .await;
        let list = cards_in(&bot, ids::P2P_CHAT_ID).pop().unwrap();
        let listed = bot.sim.card_text(&list).unwrap();
        assert!(listed.contains("请假通过（自动审批）"), "{listed}");
    }
}

#[tokio::test]
async fn refuse_with_no_approver_source_tells_the_requester_and_files_nothing() {
    for delivery in DELIVERIES {
        let bot = without_approvers(delivery, "refuse").await;
        let card = ask(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
        let before = bot.store.get_card(&card).await.unwrap().unwrap();
        let clicked = bot
            .sim
            .click_card(&bot.card_url, &card, json!({"type": "leave"}))
            .await
            .unwrap();
        let toast = clicked.toast.as_ref().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(toast.contains("未配置审批人"), "{toast}");
        assert!(!clicked.card_updated);
        let after = bot.store.get_card(&card).await.unwrap().unwrap();
        assert_eq!(after.version, before.version, "nothing written");
        assert_eq!(after.status, "pending");
    }
}

/// What Feishu ever received for the group card: each revision the simulator accepted (the
/// callback answers, delayed updates, PATCHes, CardKit writes) and each callback answer's body.
fn everything_the_group_card_showed(bot: &Bot<DynamoStore>, card: &str) -> String {
    let snapshot = bot.sim.card(card).unwrap();
    let mut all: Vec<String> = snapshot
        .history
        .iter()
        .map(|revision| revision.card.to_string())
        .collect();
    all.push(snapshot.card.to_string());
    all.extend(
        bot.sim
            .deliveries()
            .into_iter()
            .filter(|d| d.kind.starts_with("card_callback") && d.body.contains(card))
            .map(|d| d.response_body),
    );
    all.join("\n")
}

#[tokio::test]
async fn a_request_started_on_a_group_card_continues_in_p2p_and_the_group_sees_none_of_it() {
    const REASON: &str = "secretreason7f3a";
    const COMMENT: &str = "secretcomment91bd";
    for delivery in DELIVERIES {
        let (bot, approver) = with_approver(delivery).await;
        let sim = bot.sim.clone();
        let requester = sim.config().user();
        let group_card = ask(&bot, ChatKind::Group, ids::GROUP_CHAT_ID).await;
        let moved = sim
            .press_as(&bot.card_url, &requester, &group_card, "btn_leave", &[])
            .await
            .unwrap();
        let toast = moved.toast.as_ref().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(toast.contains("私聊"), "{toast}");
        settle(&bot).await;
        // The form is a card of its own in the requester's p2p chat.
        let form = cards_in(&bot, &requester.p2p_chat_id)
            .pop()
            .expect("the form in p2p");
        assert!(bot.sim.card_text(&form).unwrap().contains("[提交]"));
        let filed = sim
            .press_as(
                &bot.card_url,
                &requester,
                &form,
                "btn_file",
                &leave_form("sick", "2026-12-07", "2026-12-09", REASON),
            )
            .await
            .unwrap();
        assert_eq!(filed.client_error, None);
        settle(&bot).await;
        let review = cards_in(&bot, &approver.p2p_chat_id)
            .pop()
            .expect("the approver's card");
        sim.press_as(
            &bot.card_url,
            &approver,
            &review,
            "btn_approve",
            &[(fields::COMMENT, json!(COMMENT))],
        )
        .await
        .unwrap();
        settle(&bot).await;
        let form_text = bot.sim.card_text(&form).unwrap();
        assert!(
            form_text.contains("请假通过") && form_text.contains(REASON),
            "{form_text}"
        );
        let group = everything_the_group_card_showed(&bot, &group_card);
        for secret in [REASON, COMMENT, "2026-12-07", "2026-12-09", "病假"] {
            assert!(
                !group.contains(secret),
                "{delivery}: {secret} reached the group:\n{group}"
            );
        }
        assert!(bot
            .sim
            .card_text(&group_card)
            .unwrap()
            .contains("已转到私聊"));
        // The group chat holds only the reply text and the card: no text carries the request.
        for text in texts_in(&bot, ids::GROUP_CHAT_ID) {
            assert!(!text.contains(REASON) && !text.contains(COMMENT), "{text}");
        }
        let state = bot.store.get_card(&group_card).await.unwrap().unwrap();
        assert_eq!(state.status, "leave_moved");
        assert_eq!(state.list_key, None);
    }
}

#[tokio::test]
async fn an_approver_of_another_app_kills_the_notify_job_with_its_code() {
    for delivery in DELIVERIES {
        let foreign = "ou_f0e1d2c3b4a5968778695a4b3c2d1e0f";
        let bot = bot(delivery, &[("APPROVER_OPEN_IDS", foreign)]).await;
        bot.sim.add_foreign_open_id(foreign);
        let requester = bot.sim.config().user();
        let card = ask(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
        bot.file_leave(
            &requester,
            &card,
            &leave_form("annual", "2026-12-01", "2026-12-01", "x"),
        )
        .await;
        let summary = bot.sweep().await;
        assert_eq!(summary.failed, 1, "{summary:?}");
        let job = bot
            .store
            .get_job(&card, "notify_approvers")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.status, JobStatus::Dead, "{job:?}");
        assert!(
            job.last_error
                .as_deref()
                .unwrap_or_default()
                .contains("99992361"),
            "{job:?}"
        );
        assert_eq!(
            bot.store.get_card(&card).await.unwrap().unwrap().status,
            "leave_filed",
            "nothing decided"
        );
    }
}

#[tokio::test]
async fn a_comment_reaches_the_requesters_text_as_plain_text() {
    const HOSTILE: &str = "<at user_id=\"all\"></at>[x](https://evil.example)";
    for delivery in DELIVERIES {
        let (bot, approver) = with_approver(delivery).await;
        let sim = bot.sim.clone();
        let requester = sim.config().user();
        let card = ask(&bot, ChatKind::P2p, ids::P2P_CHAT_ID).await;
        bot.file_leave(
            &requester,
            &card,
            &leave_form("annual", "2026-12-01", "2026-12-01", "x"),
        )
        .await;
        settle(&bot).await;
        let review = cards_in(&bot, &approver.p2p_chat_id).pop().unwrap();
        sim.press_as(
            &bot.card_url,
            &approver,
            &review,
            "btn_reject",
            &[(fields::COMMENT, json!(HOSTILE))],
        )
        .await
        .unwrap();
        settle(&bot).await;
        let told = texts_in(&bot, &requester.p2p_chat_id);
        let decision = told
            .iter()
            .find(|t| t.contains("未通过"))
            .unwrap_or_else(|| panic!("{told:?}"));
        assert!(
            decision.contains("＜at user_id=\"all\"＞＜/at＞［x］(https://evil.example)"),
            "{decision}"
        );
        for markup in ["<at", "</at>", "[x]", "]("] {
            assert!(!decision.contains(markup), "{markup} in {decision}");
        }
    }
}

#[tokio::test]
async fn group_messages_without_an_at_mention_of_this_bot_get_no_answer() {
    for delivery in DELIVERIES {
        let bot = bot(delivery, &[]).await;
        for text in ["审批", "hello", "@Alice 审批"] {
            let sent = bot
                .sim
                .send_user_message(&bot.event_url, ChatKind::GroupNotAddressed, text)
                .await;
            assert_eq!(sent.status, Some(200), "{text}: {}", sent.response_body);
        }
        assert!(bot.bot_messages(ids::GROUP_CHAT_ID).is_empty());
        assert!(bot.bot_messages(ids::P2P_CHAT_ID).is_empty());
        let sends: Vec<_> = bot
            .sim
            .calls()
            .into_iter()
            .filter(|c| {
                c.path.starts_with("/open-apis/im/") || c.path.starts_with("/open-apis/cardkit/")
            })
            .collect();
        assert!(sends.is_empty(), "{sends:?}");
        // The bot's identity was asked once, and kept in the table for every instance.
        let asked = |bot: &Bot<DynamoStore>| {
            bot.sim
                .calls()
                .iter()
                .filter(|c| c.path == "/open-apis/bot/v3/info")
                .count()
        };
        assert_eq!(asked(&bot), 1);
        assert_ne!(OTHER_USER_OPEN_ID, bot.sim.config().bot_open_id);
        // @bot in the same group is answered.
        bot.sim
            .send_user_message(&bot.event_url, ChatKind::Group, "审批")
            .await;
        assert_eq!(bot.bot_messages(ids::GROUP_CHAT_ID).len(), 2);
        let second = Bot::start_with(bot.sim.clone(), bot.store.clone(), delivery, &[]).await;
        second
            .sim
            .send_user_message(&second.event_url, ChatKind::Group, "help")
            .await;
        assert_eq!(asked(&bot), 1, "a second instance reads it from the table");
    }
}
