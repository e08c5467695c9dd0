//! An approver's other answers than a vote, end to end on DynamoDB Local and the simulator over
//! HTTP: 转交 to a candidate the definition offers (the new approver decides, the old one cannot),
//! 退回 for changes (the requester's card is the form again, filled; filed again, the route starts
//! over and the first round's votes do not count), and escalation when a definition's reminders
//! run out (time advanced: the target gets a card and decides). Assertions are on what the chats
//! show and what the table holds.

use std::sync::Arc;
use std::time::Duration;

use cardbot::approval::definition::file;
use cardbot::approval::{ApprovalData, AuditAction, StepOutcome};
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
    /// The first step's approver.
    first: SimUser,
    /// The transfer candidate, or the escalation target.
    other: SimUser,
    /// The second step's approver.
    second: SimUser,
}

async fn scene(delivery: &str, extra: &str) -> Scene {
    scene_with(delivery, extra, "{open_ids: [{other}, {requester}]}").await
}

/// `transfer_to`: the manager step's, `{other}` and `{requester}` standing for their open_ids.
async fn scene_with(delivery: &str, extra: &str, transfer_to: &str) -> Scene {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let mut users = sim.add_users(3);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let settings = [
        ("APPROVER_FROM_LEADER", "false"),
        ("APPROVAL_FALLBACK", "refuse"),
    ];
    let bot = Bot::start_with(sim.clone(), store, delivery, &settings).await;
    let s = Scene {
        bot,
        requester: sim.config().user(),
        first: users.remove(0),
        other: users.remove(0),
        second: users.remove(0),
    };
    let text = format!(
        r#"definitions:
  - id: expense
    name: {{zh_cn: 费用报销, en_us: Expense}}
    fields:
      - {{name: amount, type: amount, label: {{zh_cn: 金额, en_us: Amount}}, required: true, currency: CNY}}
      - {{name: reason, type: textarea, label: {{zh_cn: 事由, en_us: Reason}}, required: true}}
{extra}    steps:
      - {{id: manager, approvers: {{open_ids: [{first}]}}, mode: all, transfer_to: {transfer_to}}}
      - {{id: finance, approvers: {{open_ids: [{second}]}}, mode: any}}
"#,
        first = s.first.open_id,
        second = s.second.open_id,
        extra = extra.replace("{other}", &s.other.open_id),
        transfer_to = transfer_to
            .replace("{other}", &s.other.open_id)
            .replace("{requester}", &s.requester.open_id),
    );
    let set = file::parse(&text).unwrap();
    apply(&*s.bot.store, SELF_BUILT_TENANT, &set, s.bot.sim.now_ms())
        .await
        .unwrap();
    s
}

impl Scene {
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

    fn card_of(&self, user: &SimUser) -> Option<String> {
        self.cards(&user.p2p_chat_id).pop()
    }

    /// 审批 → 费用报销 → the form filed with `amount`; the requester's card.
    async fn file(&self, amount: &str) -> String {
        self.bot
            .sim
            .send_user_message(&self.bot.event_url, ChatKind::P2p, "审批")
            .await;
        self.settle().await;
        let card = self.cards(ids::P2P_CHAT_ID).pop().unwrap();
        self.press(&self.requester, &card, "btn_expense", &[]).await;
        let filed = self
            .press(
                &self.requester,
                &card,
                "btn_file",
                &[("amount", json!(amount)), ("reason", json!("team dinner"))],
            )
            .await;
        assert!(toast(&filed).contains("已提交"), "{filed:?}");
        self.settle().await;
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

    async fn settle(&self) {
        for _ in 0..6 {
            let summary = self.bot.sweep().await;
            assert_eq!(summary.failed, 0, "{summary:?}");
            if summary.done == 0 {
                return;
            }
        }
    }
}

async fn a_transferred_vote_is_decided_by_the_candidate(delivery: &str) {
    let s = scene(delivery, "").await;
    let request = s.file("300").await;
    let first_card = s.card_of(&s.first).unwrap();
    let shown = s.text(&first_card);
    assert!(
        shown.contains("转交") && shown.contains("退回修改"),
        "{shown}"
    );

    // Only a candidate: the requester is named in transfer_to but never offered.
    let refused = s
        .press(
            &s.first,
            &first_card,
            "btn_transfer",
            &[("transfer_to", json!(s.requester.open_id))],
        )
        .await;
    assert!(toast(&refused).contains("候选人"), "{refused:?}");
    assert_eq!(
        s.request(&request).await.1.approvers,
        std::slice::from_ref(&s.first.open_id)
    );

    // Someone else than the card's approver: a toast, nothing written.
    let forged = s
        .press(
            &s.other,
            &first_card,
            "btn_transfer",
            &[("transfer_to", json!(s.other.open_id))],
        )
        .await;
    assert!(toast(&forged).contains("仅审批人"), "{forged:?}");
    let (_, untouched) = s.request(&request).await;
    assert_eq!(untouched.approvers, std::slice::from_ref(&s.first.open_id));
    assert!(untouched
        .audit
        .iter()
        .all(|e| e.action != AuditAction::Transferred));

    s.bot.sim.clear_calls();
    let moved = s
        .press(
            &s.first,
            &first_card,
            "btn_transfer",
            &[
                ("transfer_to", json!(s.other.open_id)),
                ("comment", json!("出差中，请代为审批")),
            ],
        )
        .await;
    assert!(toast(&moved).contains("已转交"), "{moved:?}");
    s.settle().await;
    // What Feishu receives for a 转交: one card to the new approver (a send), and the
    // requester's card refreshed (the old approver's card changed in the callback answer and is
    // refreshed too); nothing else.
    let calls: Vec<String> = s
        .bot
        .sim
        .calls()
        .iter()
        .filter(|c| !c.path.contains("tenant_access_token"))
        .map(|c| {
            format!(
                "{} {}",
                c.method,
                c.path.split('?').next().unwrap_or_default()
            )
        })
        .collect();
    let sends = calls
        .iter()
        .filter(|c| c.as_str() == "POST /open-apis/im/v1/messages")
        .count();
    println!("Feishu calls for a 转交 ({delivery} delivery): {calls:?}");
    assert_eq!(sends, 1, "{calls:#?}");
    assert!(calls.len() <= 4, "{calls:#?}");

    // The old card says to whom it went and has no buttons; its approve is refused.
    let old = s.text(&first_card);
    assert!(old.contains("你已将此审批转交给"), "{old}");
    assert!(!old.contains("[同意]"), "{old}");
    let late = s
        .bot
        .sim
        .press_as(&s.bot.card_url, &s.first, &first_card, "btn_approve", &[])
        .await;
    assert!(late.is_err(), "the old card has no 同意 any more: {late:?}");

    // The candidate got a card (with why it came to them) and decides the step; finance follows.
    let other_card = s.card_of(&s.other).expect("the candidate's card");
    assert!(
        s.text(&other_card).contains("出差中，请代为审批"),
        "{}",
        s.text(&other_card)
    );
    s.press(&s.other, &other_card, "btn_approve", &[]).await;
    s.settle().await;
    let finance = s.card_of(&s.second).unwrap();
    s.press(&s.second, &finance, "btn_approve", &[]).await;
    s.settle().await;

    let (status, data) = s.request(&request).await;
    assert_eq!(status, "expense_approved");
    assert_eq!(
        data.route[0].approvers,
        std::slice::from_ref(&s.other.open_id)
    );
    assert_eq!(data.route[0].votes.len(), 1);
    assert_eq!(data.route[0].votes[0].by, s.other.open_id);
    let transfer = data
        .audit
        .iter()
        .find(|e| e.action == AuditAction::Transferred)
        .expect("the transfer in the trail");
    assert_eq!(transfer.by.as_deref(), Some(s.first.open_id.as_str()));
    assert_eq!(transfer.to, std::slice::from_ref(&s.other.open_id));
    assert_eq!(transfer.comment.as_deref(), Some("出差中，请代为审批"));
    // One outcome: one decision event.
    assert_eq!(s.bot.events.events().len(), 1);
    assert!(s.text(&request).contains("转交"), "{}", s.text(&request));
}

#[tokio::test]
async fn a_transferred_vote_is_decided_by_the_candidate_entity_mode() {
    a_transferred_vote_is_decided_by_the_candidate("entity").await;
}

#[tokio::test]
async fn a_transferred_vote_is_decided_by_the_candidate_message_mode() {
    a_transferred_vote_is_decided_by_the_candidate("message").await;
}

#[tokio::test]
async fn a_returned_request_is_edited_filed_again_and_decided_afresh() {
    let s = scene("entity", "").await;
    let request = s.file("300").await;
    let first_round = s.card_of(&s.first).unwrap();
    s.press(&s.first, &first_round, "btn_approve", &[]).await;
    s.settle().await;
    let finance_round1 = s.card_of(&s.second).unwrap();
    let returned = s
        .press(
            &s.second,
            &finance_round1,
            "btn_return",
            &[("comment", json!("请附上发票金额"))],
        )
        .await;
    assert!(toast(&returned).contains("已退回"), "{returned:?}");
    s.settle().await;

    // The requester's card is the form again, filled with what was filed, and says why.
    let (status, _) = s.request(&request).await;
    assert_eq!(status, "expense_draft");
    let card = s.bot.sim.card(&request).unwrap().card;
    let form = card.to_string();
    assert!(form.contains("\"default_value\":\"300.00\""), "{form}");
    assert!(form.contains("\"default_value\":\"team dinner\""), "{form}");
    assert!(s.text(&request).contains("请附上发票金额"));
    // The requester is told by a text too (their card may be far up the chat).
    let told: Vec<String> = s
        .bot
        .bot_messages(ids::P2P_CHAT_ID)
        .into_iter()
        .filter(|m| m.msg_type == "text" && m.content.contains("退回修改"))
        .map(|m| m.content)
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("请附上发票金额"), "{told:?}");
    assert!(s.text(&finance_round1).contains("已退回修改"));

    // Edit one field and file again: a new round from the first step.
    let filed = s
        .press(
            &s.requester,
            &request,
            "btn_file",
            &[("amount", json!("320")), ("reason", json!("team dinner"))],
        )
        .await;
    assert!(toast(&filed).contains("已提交"), "{filed:?}");
    s.settle().await;
    let (status, data) = s.request(&request).await;
    assert_eq!(status, "expense_filed");
    assert_eq!(data.round, 1);
    assert_eq!(data.values.as_ref().unwrap()["amount"], "320.00");
    // The first round's votes do not count: the manager's approval is gone.
    assert_eq!(data.route[0].outcome, StepOutcome::Waiting);
    assert!(data.route[0].votes.is_empty());

    // The first round's cards no longer decide.
    assert!(
        s.text(&first_round).contains("不再审批"),
        "{}",
        s.text(&first_round)
    );
    let stale = s
        .bot
        .sim
        .press_as(&s.bot.card_url, &s.first, &first_round, "btn_approve", &[])
        .await;
    assert!(
        stale.is_err(),
        "the first round's card has no 同意: {stale:?}"
    );
    let first_round2 = s.card_of(&s.first).unwrap();
    assert_ne!(first_round2, first_round, "a new card for the new round");
    s.press(&s.first, &first_round2, "btn_approve", &[]).await;
    s.settle().await;
    let finance_round2 = s.card_of(&s.second).unwrap();
    assert_ne!(finance_round2, finance_round1);
    s.press(&s.second, &finance_round2, "btn_approve", &[])
        .await;
    s.settle().await;

    let (status, data) = s.request(&request).await;
    assert_eq!(status, "expense_approved");
    assert!(data.route.iter().all(|step| step.votes.len() == 1));
    // Every card shows the final state.
    for card in [
        &request,
        &first_round,
        &finance_round1,
        &first_round2,
        &finance_round2,
    ] {
        assert!(
            s.text(card).contains("费用报销通过"),
            "{card}: {}",
            s.text(card)
        );
    }
    assert_eq!(s.bot.events.events().len(), 1);
}

#[tokio::test]
async fn silent_approvers_escalate_when_reminders_run_out() {
    let s = scene(
        "message",
        "    remind: {after: 1h, every: 1h, max: 2, then: {escalate: {open_ids: [{other}]}}}\n",
    )
    .await;
    let request = s.file("300").await;
    let first_card = s.card_of(&s.first).unwrap();
    // Two reminders an hour apart, then the escalation an hour after the last.
    for _ in 0..3 {
        s.bot.sim.advance(Duration::from_secs(3600 + 1));
        s.settle().await;
    }
    let (_, data) = s.request(&request).await;
    let reminded = data
        .audit
        .iter()
        .filter(|e| e.action == AuditAction::Reminded)
        .count();
    assert_eq!(reminded, 2);
    let escalated = data
        .audit
        .iter()
        .find(|e| e.action == AuditAction::Escalated)
        .expect("escalated");
    assert_eq!(escalated.to, std::slice::from_ref(&s.other.open_id));
    // An `all` step: the silent approver's place goes to the target.
    assert_eq!(
        data.route[0].approvers,
        std::slice::from_ref(&s.other.open_id)
    );
    assert!(
        !s.text(&first_card).contains("[同意]"),
        "{}",
        s.text(&first_card)
    );

    let target_card = s.card_of(&s.other).expect("the escalation target's card");
    s.press(&s.other, &target_card, "btn_approve", &[]).await;
    s.settle().await;
    let (_, data) = s.request(&request).await;
    assert_eq!(data.route[0].outcome, StepOutcome::Approved);
    assert_eq!(data.route[1].outcome, StepOutcome::Waiting);
    assert!(
        s.text(&request).contains("超时升级"),
        "{}",
        s.text(&request)
    );
}

#[tokio::test]
async fn a_returned_request_withdrawn_ends_with_one_event() {
    let s = scene("message", "").await;
    let request = s.file("300").await;
    let first = s.card_of(&s.first).unwrap();
    s.press(&s.first, &first, "btn_return", &[]).await;
    s.settle().await;
    assert!(s.text(&request).contains("[撤回]"), "{}", s.text(&request));
    let withdrawn = s.press(&s.requester, &request, "btn_withdraw", &[]).await;
    assert!(toast(&withdrawn).contains("撤回"), "{withdrawn:?}");
    s.settle().await;
    let (status, _) = s.request(&request).await;
    assert_eq!(status, "expense_withdrawn");
    let events = s.bot.events.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail["outcome"], "withdrawn");
    assert!(s.text(&first).contains("已撤回"), "{}", s.text(&first));
}

#[tokio::test]
async fn department_candidates_come_from_the_contact_api_and_need_its_permission() {
    let s = scene_with("message", "", "{department: true}").await;
    for user in [&s.first.open_id, &s.other.open_id, &s.requester.open_id] {
        s.bot.sim.set_department(user, "od-sales");
    }
    s.bot.sim.set_department(&s.second.open_id, "od-finance");
    let request = s.file("300").await;
    let first_card = s.card_of(&s.first).unwrap();
    // The approver's department, them and the requester left out: only `other` is offered.
    let card = s.bot.sim.card(&first_card).unwrap().card.to_string();
    assert!(card.contains("select_person"), "{card}");
    assert!(card.contains(&s.other.open_id), "{card}");
    assert!(
        !card.contains(&format!("{{\"value\":\"{}\"}}", s.requester.open_id)),
        "{card}"
    );
    let wrong = s
        .press(
            &s.first,
            &first_card,
            "btn_transfer",
            &[("transfer_to", json!(s.second.open_id))],
        )
        .await;
    assert!(
        toast(&wrong).contains("候选人"),
        "another department: {wrong:?}"
    );
    s.press(
        &s.first,
        &first_card,
        "btn_transfer",
        &[("transfer_to", json!(s.other.open_id))],
    )
    .await;
    s.settle().await;
    let (_, data) = s.request(&request).await;
    assert_eq!(
        data.route[0].approvers,
        std::slice::from_ref(&s.other.open_id)
    );

    // Without the contact permission the card offers no 转交 (the vote still works).
    s.bot
        .sim
        .set_contact_access(cardbot_tests::simulator::ContactAccess::NoScope);
    let again = s.file("400").await;
    let card = s.card_of(&s.first).unwrap();
    assert_ne!(card, first_card);
    let shown = s.text(&card);
    assert!(
        !shown.contains("[转交]") && shown.contains("[同意]"),
        "{shown}"
    );
    s.press(&s.first, &card, "btn_approve", &[]).await;
    s.settle().await;
    assert_eq!(
        s.request(&again).await.1.route[0].outcome,
        StepOutcome::Approved
    );
}
