//! Every way a user reaches the bot, end to end on DynamoDB Local and the simulator over HTTP:
//! `审批` as rich text (p2p and @bot in a group), opening the bot's chat (the welcome card, once
//! a day), its 发起审批 button, the bot menu, and a card callback posted to the event URL.

use std::sync::Arc;
use std::time::Duration;

use cardbot::store::dynamo::DynamoStore;
use cardbot::store::CardStore;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::Bot;
use cardbot_tests::simulator::{ids, ChatKind, ChatMessage, Sender, SimConfig, Simulator};
use serde_json::{json, Value};

async fn bot(delivery: &str) -> Bot<DynamoStore> {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    Bot::start(sim, Arc::new(dynamodb_local::fresh_store().await), delivery).await
}

fn from_bot(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    messages
        .iter()
        .filter(|m| matches!(m.sender, Sender::App { .. }))
        .cloned()
        .collect()
}

fn text_of(message: &ChatMessage) -> String {
    let content: Value = serde_json::from_str(&message.content).unwrap();
    content["text"].as_str().unwrap_or_default().to_owned()
}

/// The bot's messages in `chat`: exactly the approval text and card.
fn assert_text_and_card<S: cardbot::store::Store>(bot: &Bot<S>, chat: &str) -> String {
    let replies = from_bot(&bot.sim.messages(chat));
    assert_eq!(replies.len(), 2, "{replies:#?}");
    assert_eq!(replies[0].msg_type, "text");
    assert!(text_of(&replies[0]).contains("审批卡片"), "{replies:?}");
    assert_eq!(replies[1].msg_type, "interactive");
    let card = bot.sim.card_text(&replies[1].message_id).unwrap();
    assert!(card.contains("[请假]"), "{card}");
    replies[1].message_id.clone()
}

#[tokio::test]
async fn a_rich_text_approval_in_p2p_and_with_at_bot_in_a_group_gets_the_text_and_the_card() {
    for (chat, chat_id) in [
        (ChatKind::P2p, ids::P2P_CHAT_ID),
        (ChatKind::Group, ids::GROUP_CHAT_ID),
    ] {
        let bot = bot("entity").await;
        let user = bot.sim.config().user();
        let delivery = bot
            .sim
            .send_post_as(&bot.event_url, &user, chat, "审批")
            .await;
        assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
        let sent = bot
            .sim
            .message(delivery.message_id.as_deref().unwrap())
            .unwrap();
        assert_eq!(sent.msg_type, "post");
        let card = assert_text_and_card(&bot, chat_id);
        assert!(bot.store.get_card(&card).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn opening_the_chat_shows_the_welcome_card_once_a_day() {
    let bot = bot("message").await;
    let user = bot.sim.config().user();
    for _ in 0..2 {
        let delivery = bot.sim.enter_p2p_chat(&bot.event_url, &user).await;
        assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
    }
    let cards = from_bot(&bot.sim.messages(ids::P2P_CHAT_ID));
    assert_eq!(cards.len(), 1, "once a day: {cards:?}");
    let welcome = bot.sim.card_text(&cards[0].message_id).unwrap();
    for words in ["审批助手", "我的申请", "待我审批", "[发起审批]"] {
        assert!(welcome.contains(words), "{words}: {welcome}");
    }
    bot.sim.advance(Duration::from_secs(24 * 3600));
    bot.sim.enter_p2p_chat(&bot.event_url, &user).await;
    assert_eq!(
        from_bot(&bot.sim.messages(ids::P2P_CHAT_ID)).len(),
        2,
        "the next day again"
    );
}

#[tokio::test]
async fn the_welcome_cards_button_sends_the_approval_card_to_the_clickers_chat() {
    let bot = bot("entity").await;
    let user = bot.sim.config().user();
    bot.sim.enter_p2p_chat(&bot.event_url, &user).await;
    let welcome = from_bot(&bot.sim.messages(ids::P2P_CHAT_ID))[0]
        .message_id
        .clone();
    let calls = bot.sim.calls().len();
    let pressed = bot
        .sim
        .press_as(&bot.card_url, &user, &welcome, "btn_start", &[])
        .await
        .unwrap();
    assert_eq!(pressed.client_error, None, "{pressed:?}");
    assert_eq!(pressed.toast.as_ref().unwrap()["content"], "审批卡片已发送");
    assert!(!pressed.card_updated, "the welcome card stays");
    assert_eq!(
        bot.sim.calls().len(),
        calls,
        "the card function calls no Feishu API"
    );
    // A re-delivery of the same click queues nothing twice.
    let summary = bot.sweep().await;
    assert_eq!((summary.done, summary.failed), (1, 0), "{summary:?}");
    let messages = from_bot(&bot.sim.messages(ids::P2P_CHAT_ID));
    assert_eq!(messages.len(), 3, "{messages:#?}");
    let card = messages[2].message_id.clone();
    assert!(bot.sim.card_text(&card).unwrap().contains("[请假]"));
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    assert_eq!(state.chat_id, ids::P2P_CHAT_ID);
    // The new card works like any other.
    let clicked = bot
        .sim
        .click_card(&bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    assert!(clicked.card_updated);
}

#[tokio::test]
async fn the_menu_item_start_approval_sends_the_card_and_other_items_are_ignored() {
    let bot = bot("entity").await;
    let user = bot.sim.config().user();
    let other = bot
        .sim
        .click_menu(&bot.event_url, &user, "something_else")
        .await;
    assert_eq!(other.status, Some(200));
    assert!(from_bot(&bot.sim.messages(ids::P2P_CHAT_ID)).is_empty());
    let delivery = bot
        .sim
        .click_menu(&bot.event_url, &user, "start_approval")
        .await;
    assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
    assert_text_and_card(&bot, ids::P2P_CHAT_ID);
    // Feishu's retry of the same event: nothing more.
    bot.sim
        .post_event(&bot.event_url, &delivery.plaintext)
        .await;
    assert_eq!(from_bot(&bot.sim.messages(ids::P2P_CHAT_ID)).len(), 2);
}

#[tokio::test]
async fn a_signed_card_callback_posted_to_the_event_url_changes_the_card_as_on_the_card_url() {
    for delivery in ["entity", "message"] {
        let bot = bot(delivery).await;
        let asked = bot
            .sim
            .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
            .await;
        assert_eq!(asked.status, Some(200));
        let card = from_bot(&bot.sim.messages(ids::P2P_CHAT_ID))[1]
            .message_id
            .clone();
        // The admin pasted the event URL as the card callback URL too.
        let clicked = bot
            .sim
            .click_card(&bot.event_url, &card, json!({"type": "leave"}))
            .await
            .unwrap();
        assert_eq!(clicked.client_error, None, "{clicked:?}");
        assert!(clicked.card_updated, "{clicked:?}");
        assert_eq!(
            clicked.toast.as_ref().unwrap()["content"],
            "已提交请假申请（模拟审批，将自动通过）"
        );
        let state = bot.store.get_card(&card).await.unwrap().unwrap();
        assert_eq!(state.status, "leave_submitted");
        // The same click again is a duplicate there too.
        let again = bot.sim.redeliver_callback(&bot.event_url, &clicked).await;
        assert!(!again.card_updated);
        assert_eq!(
            bot.store.get_card(&card).await.unwrap().unwrap().version,
            state.version
        );
        bot.sim.advance(Duration::from_secs(3));
        bot.sweep().await;
        assert!(bot.sim.card_text(&card).unwrap().contains("请假通过"));
    }
}
