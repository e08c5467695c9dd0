//! Approval routes end to end, on DynamoDB Local and the simulator over HTTP, in both delivery
//! modes: steps in order (the requester's leader, then finance when the amount is over 5000),
//! `all`, `any` and `n_of` steps decided by votes that race, a skipped step, and CC users and
//! chats with read-only cards kept in step. Assertions are on what the chats show and what the
//! table holds.

use std::sync::Arc;

use cardbot::approval::definition::file;
use cardbot::approval::{ApprovalData, StepOutcome};
use cardbot::definitions::{apply, SELF_BUILT_TENANT};
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::CardStore;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{toast, Bot};
use cardbot_tests::simulator::{ids, CallbackDelivery, ChatKind, SimConfig, SimUser, Simulator};
use serde_json::{json, Value};

struct Scene {
    bot: Bot<DynamoStore>,
    requester: SimUser,
    /// The requester's leader (the first step).
    manager: SimUser,
    /// Three approvers for the later steps.
    team: Vec<SimUser>,
    /// A CC user.
    cc: SimUser,
}

/// `second`: the second step's mode (`all`, `any`, `{n_of: 2}`) and condition.
fn routed_file(s: &Scene, second: &str, when: &str) -> String {
    let team: Vec<&str> = s.team.iter().map(|u| u.open_id.as_str()).collect();
    format!(
        r#"definitions:
  - id: expense
    name: {{zh_cn: 费用报销, en_us: Expense}}
    fields:
      - {{name: amount, type: amount, label: {{zh_cn: 金额, en_us: Amount}}, required: true, currency: CNY, cc_visible: true}}
      - {{name: reason, type: textarea, label: {{zh_cn: 事由, en_us: Reason}}, required: true}}
    steps:
      - {{id: manager, approvers: {{leader: true}}, mode: any}}
      - {{id: finance, approvers: {{open_ids: [{}]}}, mode: {second}{when}}}
    cc: {{open_ids: [{}], chat_ids: [{}]}}
"#,
        team.join(", "),
        s.cc.open_id,
        ids::GROUP_CHAT_ID,
    )
}

async fn scene(delivery: &str) -> Scene {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let mut users = sim.add_users(5);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let settings = [
        ("APPROVER_FROM_LEADER", "false"),
        ("APPROVAL_FALLBACK", "refuse"),
    ];
    let bot = Bot::start_with(sim.clone(), store, delivery, &settings).await;
    let requester = sim.config().user();
    let manager = users.remove(0);
    let cc = users.remove(3);
    sim.set_leader(&requester.open_id, &manager.open_id);
    Scene {
        bot,
        requester,
        manager,
        team: users,
        cc,
    }
}

impl Scene {
    async fn apply(&self, text: &str) {
        let set = file::parse(text).unwrap();
        apply(
            &*self.bot.store,
            SELF_BUILT_TENANT,
            &set,
            self.bot.sim.now_ms(),
        )
        .await
        .unwrap();
    }

    fn text(&self, message_id: &str) -> String {
        self.bot.sim.card_text(message_id).unwrap()
    }

    fn cards(&self, chat_id: &str) -> Vec<String> {
        self.bot
            .bot_messages(chat_id)
            .into_iter()
            .filter(|m| m.msg_type == "interactive")
            .map(|m| m.message_id)
            .collect()
    }

    /// 审批 → 费用报销 → the form filed with `amount`; returns the requester's card.
    async fn file(&self, amount: &str) -> String {
        let before = self.cards(ids::P2P_CHAT_ID).len();
        self.bot
            .sim
            .send_user_message(&self.bot.event_url, ChatKind::P2p, "审批")
            .await;
        if self.cards(ids::P2P_CHAT_ID).len() == before {
            self.bot.sweep().await;
        }
        let card = self.cards(ids::P2P_CHAT_ID)[before].clone();
        self.press(&self.requester, &card, "btn_expense", &[]).await;
        let filed = self
            .press(
                &self.requester,
                &card,
                "btn_file",
                &[
                    ("amount", json!(amount)),
                    ("reason", json!("secret reason")),
                ],
            )
            .await;
        assert!(toast(&filed).contains("已提交"), "{filed:?}");
        card
    }

    async fn press(
        &self,
        who: &SimUser,
        card: &str,
        button: &str,
        form: &[(&str, Value)],
    ) -> CallbackDelivery {
        self.bot
            .sim
            .press_as(&self.bot.card_url, who, card, button, form)
            .await
            .unwrap()
    }

    async fn request(&self, card: &str) -> (String, ApprovalData) {
        let state = self.bot.store.get_card(card).await.unwrap().unwrap();
        (
            state.status.clone(),
            ApprovalData::from_value(&state.data).unwrap(),
        )
    }

    /// Files `amount`, and the manager approves: the requester's card and the second step's
    /// approvers' cards (in team order).
    async fn to_second_step(&self, amount: &str) -> (String, Vec<String>) {
        let card = self.file(amount).await;
        self.settle().await;
        let manager_card = self.card_of(&self.manager).unwrap();
        self.press(&self.manager, &manager_card, "btn_approve", &[])
            .await;
        self.settle().await;
        let second = self.team.iter().map(|m| self.card_of(m).unwrap()).collect();
        (card, second)
    }

    /// Sweeps until nothing is left to do.
    async fn settle(&self) {
        for _ in 0..5 {
            let summary = self.bot.sweep().await;
            assert_eq!(summary.failed, 0, "{summary:?}");
            if summary.done == 0 {
                return;
            }
        }
    }

    /// `user`'s newest card from the bot.
    fn card_of(&self, user: &SimUser) -> Option<String> {
        self.cards(&user.p2p_chat_id).pop()
    }

    /// The requester's decision texts.
    fn told(&self) -> Vec<String> {
        self.bot
            .bot_messages(ids::P2P_CHAT_ID)
            .into_iter()
            .filter(|m| m.msg_type == "text" && m.content.contains("你的费用报销申请"))
            .map(|m| m.content)
            .collect()
    }
}

async fn a_small_amount_skips_finance_and_a_large_one_needs_everyone(delivery: &str) {
    let s = scene(delivery).await;
    s.apply(&routed_file(&s, "all", ", when: \"amount > 5000\""))
        .await;

    // 100: finance is skipped; the manager alone approves.
    let small = s.file("100").await;
    s.settle().await;
    let (_, data) = s.request(&small).await;
    let outcomes: Vec<_> = data.route.iter().map(|st| st.outcome).collect();
    assert_eq!(outcomes, [StepOutcome::Waiting, StepOutcome::Skipped]);
    assert!(s.text(&small).contains("已跳过"), "{}", s.text(&small));
    let manager_card = s.card_of(&s.manager).expect("the manager's card");
    assert_eq!(
        toast(&s.press(&s.manager, &manager_card, "btn_approve", &[]).await),
        "已同意"
    );
    assert_eq!(s.request(&small).await.0, "expense_approved");
    s.settle().await;
    for member in &s.team {
        assert!(s.card_of(member).is_none(), "finance gets no card");
    }
    assert_eq!(s.told().len(), 1, "{:?}", s.told());

    // 9000: the manager, then all three of finance; 同意, 同意, 拒绝 at the same moment.
    let large = s.file("9000").await;
    s.settle().await;
    let manager_card = s.card_of(&s.manager).unwrap();
    let voted = s.press(&s.manager, &manager_card, "btn_approve", &[]).await;
    assert!(toast(&voted).contains("同意"), "{voted:?}");
    assert_eq!(
        s.request(&large).await.0,
        "expense_filed",
        "finance still to vote"
    );
    s.settle().await;
    let finance: Vec<String> = s.team.iter().map(|m| s.card_of(m).unwrap()).collect();
    let votes = futures::future::join_all(s.team.iter().zip(&finance).enumerate().map(
        |(i, (member, card))| {
            let button = if i == 2 { "btn_reject" } else { "btn_approve" };
            s.press(member, card, button, &[])
        },
    ))
    .await;
    for vote in &votes {
        assert_eq!(vote.client_error, None, "{vote:?}");
    }
    let (status, data) = s.request(&large).await;
    let toasts: Vec<String> = votes.iter().map(toast).collect();
    assert_eq!(status, "expense_rejected", "{toasts:?} {:?}", data.route);
    assert_eq!(data.route[1].outcome, StepOutcome::Rejected);
    s.settle().await;
    assert_eq!(s.told().len(), 2, "told once per request: {:?}", s.told());
    // Every card shows the same outcome.
    for card in finance.iter().chain([&large, &manager_card]) {
        let text = s.text(card);
        assert!(text.contains("费用报销未通过"), "{card}: {text}");
        assert!(!s
            .bot
            .sim
            .card(card)
            .unwrap()
            .card
            .to_string()
            .contains("btn_approve"));
    }
}

#[tokio::test]
async fn a_small_amount_skips_finance_and_a_large_one_needs_everyone_entity_mode() {
    a_small_amount_skips_finance_and_a_large_one_needs_everyone("entity").await;
}

#[tokio::test]
async fn a_small_amount_skips_finance_and_a_large_one_needs_everyone_message_mode() {
    a_small_amount_skips_finance_and_a_large_one_needs_everyone("message").await;
}

async fn two_of_three_end_the_step_and_cc_cards_follow(delivery: &str) {
    let s = scene(delivery).await;
    s.apply(&routed_file(&s, "{n_of: 2}", "")).await;
    let card = s.file("300").await;
    s.settle().await;
    // CC: the user and the chat have read-only cards; the chat's shows no reason.
    let cc_user = s.card_of(&s.cc).expect("the CC user's card");
    let cc_chat = s
        .cards(ids::GROUP_CHAT_ID)
        .pop()
        .expect("the CC chat's card");
    for cc in [&cc_user, &cc_chat] {
        let json = s.bot.sim.card(cc).unwrap().card.to_string();
        assert!(!json.contains("btn_approve"), "read-only: {json}");
    }
    assert!(s.text(&cc_user).contains("secret reason"));
    let chat_text = s.text(&cc_chat);
    assert!(!chat_text.contains("secret reason"), "{chat_text}");
    assert!(chat_text.contains("300.00 CNY"), "cc_visible: {chat_text}");
    let manager_card = s.card_of(&s.manager).unwrap();
    s.press(
        &s.manager,
        &manager_card,
        "btn_approve",
        &[("comment", json!("ok by me"))],
    )
    .await;
    s.settle().await;
    let finance: Vec<String> = s.team.iter().map(|m| s.card_of(m).unwrap()).collect();
    let first = s.press(&s.team[0], &finance[0], "btn_approve", &[]).await;
    assert!(toast(&first).contains("等待其他审批人"), "{first:?}");
    let second = s.press(&s.team[1], &finance[1], "btn_approve", &[]).await;
    assert_eq!(toast(&second), "已同意");
    assert_eq!(s.request(&card).await.0, "expense_approved");
    s.settle().await;
    // The third approver's card shows the step decided, with no buttons; a late click is told.
    let third = s.text(&finance[2]);
    assert!(third.contains("费用报销通过"), "{third}");
    let json = s.bot.sim.card(&finance[2]).unwrap().card.to_string();
    assert!(!json.contains("btn_approve"), "{json}");
    // The CC cards end in the requester's state; the chat's shows no comment.
    for cc in [&cc_user, &cc_chat] {
        assert!(s.text(cc).contains("费用报销通过"), "{}", s.text(cc));
    }
    assert!(s.text(&cc_user).contains("ok by me"));
    assert!(
        !s.text(&cc_chat).contains("ok by me"),
        "{}",
        s.text(&cc_chat)
    );
}

#[tokio::test]
async fn two_of_three_end_the_step_and_cc_cards_follow_entity_mode() {
    two_of_three_end_the_step_and_cc_cards_follow("entity").await;
}

#[tokio::test]
async fn two_of_three_end_the_step_and_cc_cards_follow_message_mode() {
    two_of_three_end_the_step_and_cc_cards_follow("message").await;
}

/// Everyone votes at the same moment in an `any` step and in an `n_of` step: one outcome each,
/// the requester told once.
#[tokio::test]
async fn concurrent_votes_in_any_and_n_of_steps_give_one_outcome() {
    for (mode, delivery) in [("any", "entity"), ("{n_of: 2}", "message")] {
        let s = scene(delivery).await;
        s.apply(&routed_file(&s, mode, "")).await;
        let (card, finance) = s.to_second_step("300").await;
        let votes = futures::future::join_all(
            s.team
                .iter()
                .zip(&finance)
                .map(|(member, card)| s.press(member, card, "btn_approve", &[])),
        )
        .await;
        let decided = votes.iter().filter(|v| toast(v) == "已同意").count();
        assert_eq!(decided, 1, "{mode}: exactly one vote decides: {votes:?}");
        let (status, data) = s.request(&card).await;
        assert_eq!(status, "expense_approved", "{mode}");
        let needed = if mode == "any" { 1 } else { 2 };
        assert_eq!(
            data.route[1].votes.iter().filter(|v| v.approve).count(),
            needed,
            "{mode}: the votes that decided, none after"
        );
        s.settle().await;
        assert_eq!(s.told().len(), 1, "{mode}: {:?}", s.told());
    }
}

/// Withdraw at the second step: the request ends withdrawn, the steps not reached are cancelled,
/// and the current step's approvers' cards lose their buttons; a late vote changes nothing.
#[tokio::test]
async fn a_request_withdrawn_at_a_later_step_ends_there() {
    let s = scene("message").await;
    s.apply(&routed_file(&s, "all", "")).await;
    let (card, finance) = s.to_second_step("300").await;
    s.press(&s.team[0], &finance[0], "btn_approve", &[]).await;
    let withdrawn = s.press(&s.requester, &card, "btn_withdraw", &[]).await;
    assert!(toast(&withdrawn).contains("撤回"), "{withdrawn:?}");
    let (status, data) = s.request(&card).await;
    assert_eq!(status, "expense_withdrawn");
    assert_eq!(data.route[1].outcome, StepOutcome::Cancelled);
    s.settle().await;
    for card in &finance {
        let json = s.bot.sim.card(card).unwrap().card.to_string();
        assert!(!json.contains("btn_approve"), "{json}");
        assert!(s.text(card).contains("已撤回"), "{}", s.text(card));
    }
    // A stale client's click (the button is gone from the card): told, nothing changes.
    let late = s
        .bot
        .sim
        .click_card_as(
            &s.bot.card_url,
            &s.team[1],
            &finance[1],
            json!({"type": "approve"}),
        )
        .await
        .unwrap();
    assert!(toast(&late).contains("已处理"), "{late:?}");
    assert_eq!(s.request(&card).await.0, "expense_withdrawn");
}

/// Votes in a row coalesce: three votes on an `all` step of three, the cards refreshed after, cost
/// about one update per card of the request (7 cards: the requester's, the manager's, three
/// approvers', the CC user's and chat's), not one per card per vote.
#[tokio::test]
async fn votes_in_a_row_cost_one_update_per_card() {
    let s = scene("message").await;
    s.apply(&routed_file(&s, "all", "")).await;
    let (card, finance) = s.to_second_step("300").await;
    s.bot.sim.clear_calls();
    for (member, review) in s.team.iter().zip(&finance) {
        s.press(member, review, "btn_approve", &[]).await;
    }
    assert_eq!(s.request(&card).await.0, "expense_approved");
    s.settle().await;
    let updates = s
        .bot
        .sim
        .calls()
        .into_iter()
        .filter(|c| {
            (c.method == "PATCH" && c.path.starts_with("/open-apis/im/v1/messages/"))
                || c.path.starts_with("/open-apis/interactive/v1/card/update")
                || c.path.starts_with("/open-apis/cardkit/")
        })
        .count();
    eprintln!("card updates after 3 votes on 7 cards: {updates}");
    // 7 cards; the deciding voter's card was answered in the callback, and may be shown once more.
    assert!(
        (5..=8).contains(&updates),
        "{updates} card updates for 3 votes on 7 cards"
    );
}
