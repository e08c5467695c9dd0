//! A self-built deployment (`FEISHU_APP_TYPE` unset or `self_built`) writes exactly the items it
//! wrote before store apps existed: every key of a whole flow, pinned byte for byte (ids replaced by
//! what they are), and the list and token attributes without a tenant part. A table written by the
//! previous version is served as it is: the pin is that version's layout.

use std::collections::BTreeMap;
use std::sync::Arc;

use cardbot::store::dynamo::DynamoStore;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{leave_form, Bot};
use cardbot_tests::simulator::{ids, ChatKind, SimConfig, Simulator};

/// Every item's (pk, sk) and its `list_pk` (the lists index key), if any.
async fn table(store: &DynamoStore) -> Vec<(String, String, Option<String>)> {
    let mut items: Vec<_> = dynamodb_local::all_items(store)
        .await
        .iter()
        .map(|item| {
            let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            (s("pk").unwrap(), s("sk").unwrap(), s("list_pk"))
        })
        .collect();
    items.sort();
    items
}

/// The newest card the bot sent into `chat`.
fn newest_card(bot: &Bot<DynamoStore>, chat: &str) -> String {
    bot.bot_messages(chat)
        .into_iter()
        .rev()
        .find(|m| m.msg_type == "interactive")
        .expect("a card")
        .message_id
}

/// `text` with each id replaced by its role: the names tests can pin.
fn named(text: &str, names: &BTreeMap<String, &str>) -> String {
    let mut out = text.to_owned();
    for (id, name) in names {
        out = out.replace(id.as_str(), name);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_built_flow_writes_the_keys_of_the_previous_version_byte_for_byte() {
    for settings in [&[][..], &[("FEISHU_APP_TYPE", "self_built")][..]] {
        let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
        let approver = sim.add_users(1).remove(0);
        let store = Arc::new(dynamodb_local::fresh_store().await);
        let mut all = vec![("APPROVER_OPEN_IDS", approver.open_id.as_str())];
        all.extend_from_slice(settings);
        let bot = Bot::start_with(sim.clone(), store, "message", &all).await;
        // 审批, then 请假 on the card, the form filed, the approver approves on their card.
        let asked = sim
            .send_user_message(&bot.event_url, ChatKind::P2p, "审批")
            .await;
        let user_message = asked.message_id.clone().unwrap();
        let card = newest_card(&bot, ids::P2P_CHAT_ID);
        let tom = sim.config().user();
        let filed = bot
            .file_leave(
                &tom,
                &card,
                &leave_form("annual", "2026-12-21", "2026-12-22", "trip"),
            )
            .await;
        assert_eq!(filed.client_error, None);
        for _ in 0..4 {
            bot.sweep().await;
        }
        let review = newest_card(&bot, &approver.p2p_chat_id);
        sim.press_as(&bot.card_url, &approver, &review, "btn_approve", &[])
            .await
            .unwrap();
        for _ in 0..4 {
            bot.sweep().await;
        }
        let names = BTreeMap::from([
            (card.clone(), "<card>"),
            (review.clone(), "<review>"),
            (user_message.clone(), "<message>"),
            (ids::APP_ID.to_owned(), "<app>"),
            (tom.open_id.clone(), "<tom>"),
            (approver.open_id.clone(), "<approver>"),
            (ids::P2P_CHAT_ID.to_owned(), "<tom_chat>"),
            (approver.p2p_chat_id.clone(), "<approver_chat>"),
        ]);
        let mut items: Vec<String> = table(&bot.store)
            .await
            .into_iter()
            // Deliveries of callbacks are keyed by Feishu's event ids: counted, not named.
            .filter(|(pk, _, _)| {
                !pk.starts_with("dedup#") || pk.contains("om_") || pk.contains(':')
            })
            .map(|(pk, sk, list)| {
                let line = match list {
                    Some(list) => format!("{pk} | {sk} | {list}"),
                    None => format!("{pk} | {sk}"),
                };
                named(&line, &names)
            })
            .collect();
        items.sort();
        let expected: Vec<String> = EXPECTED.iter().map(|line| (*line).to_owned()).collect();
        assert_eq!(items, expected, "{settings:?}:\n{}", items.join("\n"));
    }
}

/// The previous version's keys of the flow above (`card#<message_id>`, `requests#<open_id>`,
/// `rate#<app_id>#…`, `token#<app_id>`: no tenant part anywhere).
const EXPECTED: &[&str] = &[
    "card#<card> | job#decision_event",
    "card#<card> | job#expire",
    "card#<card> | job#notify_approvers",
    "card#<card> | job#notify_requester",
    "card#<card> | job#refresh",
    "card#<card> | job#remind_1",
    "card#<card> | state | requests#<tom>",
    "card#<review> | job#refresh",
    "card#<review> | state",
    "dedup#<message> | -",
    "rate#<app>#app | counters",
    "rate#<app>#chat#<tom_chat> | counters",
    "rate#<app>#chat#open_id:<approver> | counters",
    "rate#<app>#chat#open_id:<tom> | counters",
    "token#<app> | tenant",
];
