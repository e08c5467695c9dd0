//! The real approval end to end, on DynamoDB Local and the simulator over HTTP, in both delivery
//! modes: a request through the form, the approvers' p2p cards, one decision (also under two
//! concurrent clicks), withdraw, refusals that change nothing, leader routing through the contact
//! API and its permission error. Assertions are on what the chats show and what the table holds.

use std::sync::Arc;

use cardbot::approval::{ApprovalData, AuditAction};
use cardbot::entry::card_updater::Summary;
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{CardStore, JobStore};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{leave_form, Bot};
use cardbot_tests::simulator::{
    ids, CallbackDelivery, ChatKind, ChatMessage, ContactAccess, Sender, SimConfig, SimError,
    SimUser, Simulator,
};
use serde_json::{json, Value};

struct Scene {
    bot: Bot<DynamoStore>,
    requester: SimUser,
    approvers: Vec<SimUser>,
}

/// A bot with two configured approvers (the simulator's added users), or none: the defaults'
/// routing (the leader look-up on, `APPROVAL_FALLBACK=refuse`).
async fn scene(delivery: &str, configured: bool) -> Scene {
    let list = |approvers: &[SimUser]| format!("{},{}", approvers[0].open_id, approvers[1].open_id);
    if configured {
        scene_with(delivery, |a| {
            vec![("APPROVER_OPEN_IDS".to_owned(), list(a))]
        })
        .await
    } else {
        scene_with(delivery, |_| {
            vec![
                ("APPROVER_FROM_LEADER".to_owned(), "true".to_owned()),
                ("APPROVAL_FALLBACK".to_owned(), "refuse".to_owned()),
            ]
        })
        .await
    }
}

/// The tutorial's deployment: no approver source, `APPROVAL_FALLBACK=simulated`.
async fn tutorial_scene(delivery: &str) -> Scene {
    scene_with(delivery, |_| {
        vec![
            ("APPROVER_FROM_LEADER".to_owned(), "false".to_owned()),
            ("APPROVAL_FALLBACK".to_owned(), "simulated".to_owned()),
        ]
    })
    .await
}

/// A bot whose settings are made from the two added users.
async fn scene_with(
    delivery: &str,
    settings: impl FnOnce(&[SimUser]) -> Vec<(String, String)>,
) -> Scene {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approvers = sim.add_users(2);
    let owned = settings(&approvers);
    let settings: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start_with(sim.clone(), store, delivery, &settings).await;
    Scene {
        requester: sim.config().user(),
        bot,
        approvers,
    }
}

fn from_bot(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    messages
        .iter()
        .filter(|m| matches!(m.sender, Sender::App { .. }))
        .cloned()
        .collect()
}

fn texts(messages: &[ChatMessage]) -> Vec<String> {
    from_bot(messages)
        .iter()
        .filter(|m| m.msg_type == "text")
        .map(|m| {
            let content: Value = serde_json::from_str(&m.content).unwrap();
            content["text"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

fn toast(delivery: &CallbackDelivery) -> String {
    assert_eq!(delivery.client_error, None, "{delivery:?}");
    delivery
        .toast
        .as_ref()
        .and_then(|t| t["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

impl Scene {
    fn card_text(&self, message_id: &str) -> String {
        self.bot.sim.card_text(message_id).unwrap()
    }

    fn card_json(&self, message_id: &str) -> String {
        self.bot.sim.card(message_id).unwrap().card.to_string()
    }

    /// `审批` → the approval card; returns its message_id.
    async fn ask(&self) -> String {
        let delivery = self
            .bot
            .sim
            .send_user_message(&self.bot.event_url, ChatKind::P2p, "审批")
            .await;
        assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
        let cards: Vec<_> = from_bot(&self.bot.sim.messages(ids::P2P_CHAT_ID))
            .into_iter()
            .filter(|m| m.msg_type == "interactive")
            .collect();
        cards.last().unwrap().message_id.clone()
    }

    /// `who` clicks `card` with a raw callback `value` (what a stale client would send).
    async fn click(&self, who: &SimUser, card: &str, value: Value) -> CallbackDelivery {
        self.bot
            .sim
            .click_card_as(&self.bot.card_url, who, card, value)
            .await
            .unwrap()
    }

    async fn press(
        &self,
        who: &SimUser,
        card: &str,
        button: &str,
        form: &[(&str, Value)],
    ) -> Result<CallbackDelivery, SimError> {
        self.bot
            .sim
            .press_as(&self.bot.card_url, who, card, button, form)
            .await
    }

    /// 请假 → the form → a valid submit → the approvers' cards; returns (requester's card, the
    /// approvers' cards in approver order).
    async fn file_leave(&self, reason: &str) -> (String, Vec<String>) {
        let card = self.ask().await;
        let opened = self
            .press(&self.requester, &card, "btn_leave", &[])
            .await
            .unwrap();
        assert!(opened.card_updated, "{opened:?}");
        let form = self.card_json(&card);
        for name in ["leave_type", "start_date", "end_date", "reason", "btn_file"] {
            assert!(form.contains(name), "the form has {name}: {form}");
        }
        let filed = self
            .press(
                &self.requester,
                &card,
                "btn_file",
                &leave_form("annual", "2026-12-01", "2026-12-03", reason),
            )
            .await
            .unwrap();
        assert!(toast(&filed).contains("已提交"), "{filed:?}");
        assert!(self.card_text(&card).contains("审批中"));
        let summary = self.bot.sweep().await;
        assert_eq!(summary.failed, 0, "{summary:?}");
        let reviews = self
            .approvers
            .iter()
            .map(|a| {
                let cards: Vec<_> = from_bot(&self.bot.sim.messages(&a.p2p_chat_id))
                    .into_iter()
                    .filter(|m| m.msg_type == "interactive")
                    .collect();
                assert_eq!(cards.len(), 1, "one card for {}", a.open_id);
                cards[0].message_id.clone()
            })
            .collect();
        (card, reviews)
    }

    async fn request(&self, card: &str) -> (String, ApprovalData) {
        let state = self.bot.store.get_card(card).await.unwrap().unwrap();
        (
            state.status.clone(),
            ApprovalData::from_value(&state.data).unwrap(),
        )
    }
}

async fn approve_with_comment(delivery: &str) {
    let s = scene(delivery, true).await;
    let (card, reviews) = s.file_leave("family trip").await;
    let review = s.card_text(&reviews[0]);
    for words in [
        "请假审批",
        "年假",
        "2026-12-01",
        "family trip",
        "同意",
        "拒绝",
    ] {
        assert!(review.contains(words), "{words}: {review}");
    }
    assert!(
        s.card_json(&reviews[0]).contains(&s.requester.open_id),
        "requester mentioned"
    );
    let decided = s
        .press(
            &s.approvers[0],
            &reviews[0],
            "btn_approve",
            &[("comment", json!("好的"))],
        )
        .await
        .unwrap();
    assert_eq!(toast(&decided), "已同意");
    assert!(
        decided.card_updated,
        "the deciding card updates in the answer"
    );
    assert!(s.card_text(&reviews[0]).contains("请假通过"));
    let summary = s.bot.sweep().await;
    // The requester's card, the text, both approvers' cards (the decider's leaves 待我审批), and
    // the request's decision event.
    assert_eq!((summary.done, summary.failed), (5, 0), "{summary:?}");
    assert_eq!(s.bot.events.events().len(), 1);
    for message in [&card, &reviews[0], &reviews[1]] {
        let text = s.card_text(message);
        assert!(text.contains("请假通过"), "{text}");
        let json = s.card_json(message);
        assert!(
            json.contains(&s.approvers[0].open_id),
            "the approver shown: {json}"
        );
        assert!(json.contains("好的"), "the comment shown");
        for button in ["btn_approve", "btn_reject", "btn_withdraw"] {
            assert!(!json.contains(button), "{button} gone from {message}");
        }
    }
    let told = texts(&s.bot.sim.messages(&s.requester.p2p_chat_id));
    assert!(
        told.iter()
            .any(|t| t.contains("你的请假申请已通过") && t.contains("好的")),
        "{told:?}"
    );
    let (status, data) = s.request(&card).await;
    assert_eq!(status, "leave_approved");
    assert_eq!(
        data.decided_by.as_deref(),
        Some(s.approvers[0].open_id.as_str())
    );
    assert_eq!(data.comment.as_deref(), Some("好的"));
    let trail: Vec<_> = data.audit.iter().map(|e| e.action).collect();
    assert_eq!(trail, [AuditAction::Submitted, AuditAction::Approved]);
    assert_eq!(data.review_cards.len(), 2);
    // The other approver's buttons are gone: a client cannot press them.
    let late = s
        .press(&s.approvers[1], &reviews[1], "btn_reject", &[])
        .await;
    assert!(matches!(late, Err(SimError::NoButton(_))), "{late:?}");
}

#[tokio::test]
async fn entity_mode_request_approved_with_a_comment_updates_every_card_and_tells_the_requester() {
    approve_with_comment("entity").await;
}

#[tokio::test]
async fn message_mode_request_approved_with_a_comment_updates_every_card_and_tells_the_requester() {
    approve_with_comment("message").await;
}

#[tokio::test]
async fn rejected_with_a_comment() {
    let s = scene("message", true).await;
    let (card, reviews) = s.file_leave("moving house").await;
    let decided = s
        .press(
            &s.approvers[1],
            &reviews[1],
            "btn_reject",
            &[("comment", json!("人手不足"))],
        )
        .await
        .unwrap();
    assert_eq!(toast(&decided), "已拒绝");
    s.bot.sweep().await;
    for message in [&card, &reviews[0], &reviews[1]] {
        assert!(
            s.card_text(message).contains("请假未通过"),
            "{}",
            s.card_text(message)
        );
        assert!(s.card_json(message).contains("人手不足"));
    }
    let told = texts(&s.bot.sim.messages(&s.requester.p2p_chat_id));
    assert!(
        told.iter()
            .any(|t| t.contains("未通过") && t.contains("人手不足")),
        "{told:?}"
    );
    assert_eq!(s.request(&card).await.0, "leave_rejected");
}

async fn two_approvers_at_once(delivery: &str) {
    let s = scene(delivery, true).await;
    let (card, reviews) = s.file_leave("conference").await;
    let (a, b) = tokio::join!(
        s.press(&s.approvers[0], &reviews[0], "btn_approve", &[]),
        s.press(&s.approvers[1], &reviews[1], "btn_reject", &[]),
    );
    let toasts = [toast(&a.unwrap()), toast(&b.unwrap())];
    let decided: Vec<_> = toasts
        .iter()
        .filter(|t| *t == "已同意" || *t == "已拒绝")
        .collect();
    assert_eq!(decided.len(), 1, "exactly one decision: {toasts:?}");
    assert!(
        toasts.iter().any(|t| t.contains("已处理")),
        "the other is told: {toasts:?}"
    );
    s.bot.sweep().await;
    let (status, data) = s.request(&card).await;
    let outcome = if status == "leave_approved" {
        "请假通过"
    } else {
        assert_eq!(status, "leave_rejected");
        "请假未通过"
    };
    assert_eq!(
        data.audit.len(),
        2,
        "one decision in the trail: {:?}",
        data.audit
    );
    for message in [&card, &reviews[0], &reviews[1]] {
        assert!(
            s.card_text(message).contains(outcome),
            "{}",
            s.card_text(message)
        );
    }
}

#[tokio::test]
async fn two_approvers_decide_at_the_same_moment_entity_mode() {
    two_approvers_at_once("entity").await;
}

#[tokio::test]
async fn two_approvers_decide_at_the_same_moment_message_mode() {
    two_approvers_at_once("message").await;
}

#[tokio::test]
async fn a_non_approver_and_a_decided_request_get_a_toast_no_change_and_no_feishu_call() {
    let s = scene("entity", true).await;
    let (card, reviews) = s.file_leave("dentist").await;
    let before = s.request(&card).await;
    let calls = s.bot.sim.calls().len();
    // The requester is no approver of their own request.
    let outsider = s
        .press(&s.requester, &reviews[0], "btn_approve", &[])
        .await
        .unwrap();
    assert!(toast(&outsider).contains("仅审批人"), "{outsider:?}");
    assert!(!outsider.card_updated);
    assert_eq!(s.request(&card).await, before, "nothing written");
    assert_eq!(s.bot.sim.calls().len(), calls, "no Feishu call");
    s.press(&s.approvers[0], &reviews[0], "btn_approve", &[])
        .await
        .unwrap();
    s.bot.sweep().await;
    let decided = s.request(&card).await;
    let calls = s.bot.sim.calls().len();
    // A click that still carries 拒绝 (a stale client): refused, nothing changes.
    let stale = s
        .click(&s.approvers[1], &reviews[1], json!({"type": "reject"}))
        .await;
    assert!(toast(&stale).contains("已处理"), "{stale:?}");
    assert_eq!(s.request(&card).await, decided);
    assert_eq!(s.bot.sim.calls().len(), calls, "no Feishu call");
    let jobs = s.bot.store.jobs_for_card(&reviews[1]).await.unwrap();
    assert_eq!(jobs.len(), 1, "only the decision's refresh: {jobs:?}");
}

#[tokio::test]
async fn withdraw_while_pending_then_a_decision_is_refused() {
    let s = scene("message", true).await;
    let (card, reviews) = s.file_leave("wedding").await;
    let withdrawn = s
        .press(&s.requester, &card, "btn_withdraw", &[])
        .await
        .unwrap();
    assert!(toast(&withdrawn).contains("撤回"), "{withdrawn:?}");
    s.bot.sweep().await;
    for message in [&card, &reviews[0], &reviews[1]] {
        let text = s.card_text(message);
        assert!(text.contains("已撤回"), "{text}");
        assert!(!s.card_json(message).contains("btn_approve"));
    }
    let late = s
        .click(&s.approvers[0], &reviews[0], json!({"type": "approve"}))
        .await;
    assert!(toast(&late).contains("已处理"), "{late:?}");
    let (status, data) = s.request(&card).await;
    assert_eq!(status, "leave_withdrawn");
    assert_eq!(data.decided_by, None);
    let trail: Vec<_> = data.audit.iter().map(|e| e.action).collect();
    assert_eq!(trail, [AuditAction::Submitted, AuditAction::Withdrawn]);
}

#[tokio::test]
async fn invalid_form_input_gets_a_toast_naming_the_field_and_files_nothing() {
    let s = scene("entity", true).await;
    let card = s.ask().await;
    s.press(&s.requester, &card, "btn_leave", &[])
        .await
        .unwrap();
    let before = s.request(&card).await;
    assert_eq!(before.0, "leave_draft");
    let backwards = s
        .press(
            &s.requester,
            &card,
            "btn_file",
            &leave_form("sick", "2026-12-05", "2026-12-01", "flu"),
        )
        .await
        .unwrap();
    assert!(toast(&backwards).contains("结束日期"), "{backwards:?}");
    assert!(!backwards.card_updated);
    assert_eq!(s.request(&card).await, before, "nothing filed");
    assert!(s
        .bot
        .store
        .jobs_for_card(&card)
        .await
        .unwrap()
        .iter()
        .all(|j| j.kind != "notify_approvers"));
    // The client refuses an empty required field before any callback.
    let empty = s
        .press(
            &s.requester,
            &card,
            "btn_file",
            &[("leave_type", json!("sick"))],
        )
        .await;
    assert!(
        matches!(empty, Err(SimError::RequiredEmpty(_))),
        "{empty:?}"
    );
    // A signed callback the client would not send: the bot checks again.
    let blank = s.click(&s.requester, &card, json!({"type": "file"})).await;
    assert!(toast(&blank).contains("请假类型"), "{blank:?}");
    assert_eq!(s.request(&card).await, before);
}

#[tokio::test]
async fn hostile_reason_is_shown_as_text() {
    let s = scene("message", true).await;
    let (card, reviews) = s
        .file_leave("</at><at id=all></at> **bold** <script>")
        .await;
    for message in [&card, &reviews[0]] {
        let json = s.card_json(message);
        assert!(!json.contains("<at id=all>"), "{json}");
        assert!(!json.contains("<script>"), "{json}");
    }
    // The texts too: a hostile comment reaches the requester's text as text, never as an @all.
    let hostile = "</at><at user_id=\"all\"></at> <script>";
    s.press(
        &s.approvers[0],
        &reviews[0],
        "btn_reject",
        &[("comment", json!(hostile))],
    )
    .await
    .unwrap();
    s.bot.sweep().await;
    let told = texts(&s.bot.sim.messages(&s.requester.p2p_chat_id));
    let decision = told
        .iter()
        .find(|t| t.contains("未通过"))
        .unwrap_or_else(|| panic!("the requester is told: {told:?}"));
    assert!(
        !decision.contains('<') && !decision.contains('>'),
        "{decision}"
    );
    assert!(decision.contains("＜at user_id=\"all\"＞"), "{decision}");
}

#[tokio::test]
async fn the_leader_from_the_contact_api_is_the_approver() {
    let s = scene("entity", false).await;
    let leader = &s.approvers[1];
    s.bot.sim.set_leader(&s.requester.open_id, &leader.open_id);
    let card = s.ask().await;
    let lookups = |s: &Scene| -> Vec<_> {
        s.bot
            .sim
            .calls()
            .into_iter()
            .filter(|c| c.method == "GET" && c.path.contains("/contact/v3/users/"))
            .collect()
    };
    assert!(lookups(&s).is_empty(), "no look-up on the reply's path");
    s.press(&s.requester, &card, "btn_overtime", &[])
        .await
        .unwrap();
    let filed = s
        .press(
            &s.requester,
            &card,
            "btn_file",
            &[
                ("date", json!("2026-12-06 +0800")),
                ("hours", json!("2.5")),
                ("reason", json!("release")),
            ],
        )
        .await
        .unwrap();
    assert!(toast(&filed).contains("已提交"), "{filed:?}");
    s.bot.sweep().await;
    // Resolved once, when the request was filed, and kept with it.
    let lookups = lookups(&s);
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert!(lookups[0].path.contains("user_id_type=open_id"));
    let (_, data) = s.request(&card).await;
    assert_eq!(data.approvers, std::slice::from_ref(&leader.open_id));
    let review = from_bot(&s.bot.sim.messages(&leader.p2p_chat_id));
    assert_eq!(review.len(), 1, "{review:?}");
    assert!(s.card_text(&review[0].message_id).contains("2.5 小时"));
    assert!(from_bot(&s.bot.sim.messages(&s.approvers[0].p2p_chat_id)).is_empty());
}

#[tokio::test]
async fn without_contact_permission_nothing_is_approved_and_the_requester_is_told_why() {
    for delivery in ["entity", "message"] {
        for (access, why) in [
            (ContactAccess::NoScope, "99991672"),
            (ContactAccess::OutsideScope, "41050"),
            // Without the department field scope the leader is left out: no leader.
            (ContactAccess::NoLeaderField, "没有直属上级"),
        ] {
            let s = scene(delivery, false).await;
            s.bot
                .sim
                .set_leader(&s.requester.open_id, &s.approvers[0].open_id);
            s.bot.sim.set_contact_access(access);
            let card = s.ask().await;
            // The defaults name an approver source: the form opens (`file_leave` presses 请假
            // and expects the form).
            let filed = s
                .bot
                .file_leave(
                    &s.requester,
                    &card,
                    &leave_form("annual", "2026-12-01", "2026-12-02", "family"),
                )
                .await;
            assert!(toast(&filed).contains("已提交"), "{filed:?}");
            // The notify job finds nobody; the next sweep refreshes the card and tells them.
            for _ in 0..2 {
                let summary = s.bot.sweep().await;
                assert_eq!(summary.failed, 0, "{summary:?}");
            }
            let (status, data) = s.request(&card).await;
            assert_eq!(status, "leave_unrouted", "{access:?}: nothing approved");
            assert!(data.approvers.is_empty() && !data.automatic);
            let shown = s.card_text(&card);
            assert!(
                shown.contains("无审批人") && shown.contains(why),
                "{access:?}: {shown}"
            );
            assert!(!shown.contains("请假通过"), "{shown}");
            let told = texts(&s.bot.sim.messages(&s.requester.p2p_chat_id));
            assert!(
                told.iter()
                    .any(|t| t.contains("找不到审批人") && t.contains(why)),
                "{access:?}: {told:?}"
            );
            for approver in &s.approvers {
                assert!(from_bot(&s.bot.sim.messages(&approver.p2p_chat_id)).is_empty());
            }
        }
    }
}

#[tokio::test]
async fn the_simulated_fallback_approves_a_request_nobody_can_decide_and_says_so() {
    let s = scene_with("message", |_| {
        vec![
            ("APPROVER_FROM_LEADER".to_owned(), "true".to_owned()),
            ("APPROVAL_FALLBACK".to_owned(), "simulated".to_owned()),
        ]
    })
    .await;
    s.bot.sim.set_contact_access(ContactAccess::NoScope);
    let card = s.ask().await;
    s.bot
        .file_leave(
            &s.requester,
            &card,
            &leave_form("annual", "2026-12-01", "2026-12-02", "family"),
        )
        .await;
    s.bot.sweep().await;
    s.bot.sweep().await;
    let (status, data) = s.request(&card).await;
    assert_eq!(status, "leave_approved");
    assert!(data.automatic && data.decided_by.is_none());
    let shown = s.card_text(&card);
    assert!(
        shown.contains("自动通过") && shown.contains("并非真人审批"),
        "{shown}"
    );
    let told = texts(&s.bot.sim.messages(&s.requester.p2p_chat_id));
    assert!(told.iter().any(|t| t.contains("自动通过")), "{told:?}");
}

#[tokio::test]
async fn a_contact_api_failure_never_holds_the_reply_back() {
    use cardbot_tests::simulator::FaultKind;
    for (delivery, fault) in [
        ("entity", FaultKind::ServerError { status: 500 }),
        ("message", FaultKind::ServerError { status: 500 }),
        ("entity", FaultKind::Api { code: 1_234_567 }),
        ("message", FaultKind::Api { code: 1_234_567 }),
    ] {
        let s = scene(delivery, false).await;
        s.bot
            .sim
            .set_leader(&s.requester.open_id, &s.approvers[0].open_id);
        s.bot
            .sim
            .fail_next("GET", "/open-apis/contact/v3/users/*", 100, fault.clone());
        let card = s.ask().await;
        let mine = from_bot(&s.bot.sim.messages(ids::P2P_CHAT_ID));
        assert_eq!(mine.len(), 2, "the text and the card: {mine:?}");
        assert_eq!(mine[0].msg_type, "text");
        assert!(s.card_text(&card).contains("请假"));
        // At filing the look-up fails: the notify job is retried, nothing is decided.
        s.bot
            .file_leave(
                &s.requester,
                &card,
                &leave_form("annual", "2026-12-01", "2026-12-02", "x"),
            )
            .await;
        s.bot.sweep().await;
        assert_eq!(s.request(&card).await.0, "leave_filed", "{fault:?}");
        // A 5xx is retried later; a code Feishu does not document for this API is permanent:
        // the job goes dead with it and the dead-job alarm pages someone.
        let job = s
            .bot
            .store
            .get_job(&card, "notify_approvers")
            .await
            .unwrap()
            .unwrap();
        match fault {
            FaultKind::ServerError { .. } => {
                assert_eq!(job.status, cardbot::store::JobStatus::Pending, "{job:?}");
                assert_eq!(job.attempts, 1, "{job:?}");
            }
            _ => {
                assert_eq!(job.status, cardbot::store::JobStatus::Dead, "{job:?}");
                assert!(job.last_error.unwrap_or_default().contains("1234567"));
            }
        }
    }
}

// ---- lifecycle: reminders, expiry, terminal errors (simulated clock) ----

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

fn reminders_in(s: &Scene, approver: &SimUser) -> Vec<String> {
    texts(&s.bot.sim.messages(&approver.p2p_chat_id))
        .into_iter()
        .filter(|t| t.starts_with("提醒"))
        .collect()
}

async fn remind_then_expire(delivery: &str, buzz: bool) {
    let s = scene(delivery, true).await;
    s.bot.sim.set_urgent_allowed(buzz);
    let (card, reviews) = s.file_leave("annual trip").await;
    let filed_at = s.bot.sim.now_ms();
    // Nothing before the first day is over.
    s.bot.sim.advance(23 * HOUR);
    s.bot.sweep().await;
    assert!(reminders_in(&s, &s.approvers[0]).is_empty());
    for n in 1..=3 {
        s.bot.sim.advance(if n == 1 { HOUR } else { 24 * HOUR });
        let summary = s.bot.sweep().await;
        assert_eq!(summary.failed, 0, "{summary:?}");
        for approver in &s.approvers {
            let got = reminders_in(&s, approver);
            assert_eq!(
                got.len(),
                n,
                "reminder {n} for {}: {got:?}",
                approver.open_id
            );
            assert!(got[n - 1].contains(&format!("第 {n} 次")), "{got:?}");
        }
        let (_, data) = s.request(&card).await;
        let reminded = data
            .audit
            .iter()
            .filter(|e| e.action == AuditAction::Reminded)
            .count();
        assert_eq!(reminded, n, "{:?}", data.audit);
    }
    // The reminders are replies to each approver's card: they link to it.
    let replies: Vec<_> = from_bot(&s.bot.sim.messages(&s.approvers[0].p2p_chat_id))
        .into_iter()
        .filter(|m| m.msg_type == "text")
        .collect();
    assert!(replies
        .iter()
        .all(|m| m.parent_id.as_deref() == Some(reviews[0].as_str())));
    let buzzes = s.bot.sim.buzzes();
    assert_eq!(buzzes.len(), if buzz { 6 } else { 0 }, "{buzzes:?}");
    // No fourth reminder.
    s.bot.sim.advance(24 * HOUR);
    s.bot.sweep().await;
    assert_eq!(reminders_in(&s, &s.approvers[1]).len(), 3);
    // At +7 days after the card was sent, the request expires on every card.
    let (status, _) = s.request(&card).await;
    assert_eq!(status, "leave_filed");
    let until_ttl = filed_at + 7 * 24 * 3_600_000 - s.bot.sim.now_ms();
    s.bot.sim.advance(std::time::Duration::from_millis(
        until_ttl.max(0) as u64 + 1_000,
    ));
    let summary = s.bot.sweep().await;
    assert_eq!(
        (summary.done, summary.failed),
        (1, 0),
        "the expiry: {summary:?}"
    );
    // Its refreshes, the text and the decision event are new jobs: the stream delivers them;
    // here the next sweep.
    let summary = s.bot.sweep().await;
    assert_eq!((summary.done, summary.failed), (4, 0), "{summary:?}");
    let ended: Vec<_> = s
        .bot
        .events
        .events()
        .iter()
        .map(|e| e.detail["outcome"].clone())
        .collect();
    assert_eq!(ended, [json!("expired")]);
    for message in [&card, &reviews[0], &reviews[1]] {
        let text = s.card_text(message);
        assert!(text.contains("已过期"), "{text}");
        assert!(!s.card_json(message).contains("btn_approve"));
        assert!(!s.card_json(message).contains("btn_withdraw"));
    }
    let told = texts(&s.bot.sim.messages(&s.requester.p2p_chat_id));
    assert!(told.iter().any(|t| t.contains("已过期")), "{told:?}");
    let (status, data) = s.request(&card).await;
    assert_eq!(status, "expired");
    assert_eq!(
        data.audit.last().map(|e| e.action),
        Some(AuditAction::Expired)
    );
    // A decision after expiry is refused.
    let late = s
        .click(&s.approvers[0], &reviews[0], json!({"type": "approve"}))
        .await;
    assert!(toast(&late).contains("过期"), "{late:?}");
}

#[tokio::test]
async fn a_pending_request_is_reminded_three_times_then_expires_on_every_card_entity_mode() {
    remind_then_expire("entity", true).await;
}

#[tokio::test]
async fn without_the_buzz_scope_reminders_are_messages_alone_message_mode() {
    remind_then_expire("message", false).await;
}

/// A reminder job that fails after its first approver's buzz (the second approver's reply keeps
/// failing) is retried: every approver is reminded, each buzzed once, the reminder recorded once.
#[tokio::test]
async fn a_reminder_retried_after_its_buzz_buzzes_each_approver_once() {
    use cardbot_tests::simulator::FaultKind;
    let s = scene("message", true).await;
    let (card, reviews) = s.file_leave("annual trip").await;
    s.bot.sim.advance(24 * HOUR);
    s.bot.sim.fail_next(
        "POST",
        &format!("/open-apis/im/v1/messages/{}/reply", reviews[1]),
        10,
        FaultKind::ServerError { status: 500 },
    );
    let summary = s.bot.sweep().await;
    assert_eq!(summary.failed, 1, "{summary:?}");
    assert_eq!(s.bot.sim.buzzes().len(), 1, "the first approver was buzzed");
    let (_, data) = s.request(&card).await;
    assert!(
        data.audit.iter().all(|e| e.action != AuditAction::Reminded),
        "not recorded before it went out: {:?}",
        data.audit
    );
    // The fault is over; the retry reminds the second approver and buzzes nobody twice.
    s.bot.sim.clear_faults();
    s.bot.sim.advance(std::time::Duration::from_secs(300));
    let summary = s.bot.sweep().await;
    assert_eq!(summary.failed, 0, "{summary:?}");
    let mut buzzed: Vec<String> = s.bot.sim.buzzes().into_iter().map(|(_, who)| who).collect();
    buzzed.sort();
    let mut approvers: Vec<String> = s.approvers.iter().map(|a| a.open_id.clone()).collect();
    approvers.sort();
    assert_eq!(buzzed, approvers, "one buzz each");
    for approver in &s.approvers {
        assert_eq!(reminders_in(&s, approver).len(), 1, "{}", approver.open_id);
    }
    let (_, data) = s.request(&card).await;
    let reminded = data
        .audit
        .iter()
        .filter(|e| e.action == AuditAction::Reminded)
        .count();
    assert_eq!(reminded, 1);
}

/// A reminder that reached nobody is not in the trail; the next one is, once, even when its job
/// runs again (its record is kept with the reminder, not inferred from the trail's count).
#[tokio::test]
async fn a_reminder_after_an_unreached_one_is_recorded_once_however_often_it_runs() {
    use cardbot::store::NewJob;
    use cardbot_tests::simulator::FaultKind;
    let s = scene("message", true).await;
    let (card, reviews) = s.file_leave("annual trip").await;
    // Reminder 1: Feishu refuses both replies for good.
    s.bot.sim.advance(24 * HOUR);
    for review in &reviews {
        s.bot.sim.fail_next(
            "POST",
            &format!("/open-apis/im/v1/messages/{review}/reply"),
            1,
            FaultKind::Api { code: 230002 },
        );
    }
    let summary = s.bot.sweep().await;
    assert_eq!(summary.failed, 0, "{summary:?}");
    let reminded = |data: &ApprovalData| {
        data.audit
            .iter()
            .filter(|e| e.action == AuditAction::Reminded)
            .count()
    };
    assert_eq!(reminded(&s.request(&card).await.1), 0, "reached nobody");
    // Reminder 2 reaches both and is recorded.
    s.bot.sim.advance(24 * HOUR);
    let summary = s.bot.sweep().await;
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(reminded(&s.request(&card).await.1), 1);
    // Its job runs again (re-armed, as after a lost completion): nothing more in the trail.
    s.bot
        .store
        .enqueue(&NewJob {
            card_key: card.clone(),
            job_id: "remind_2".into(),
            kind: "remind".into(),
            payload: json!({"n": 2}),
            not_before: s.bot.sim.now_ms(),
            rearm: true,
        })
        .await
        .unwrap();
    let summary = s.bot.sweep().await;
    assert!(summary.done >= 1, "{summary:?}");
    assert_eq!(reminded(&s.request(&card).await.1), 1, "recorded once");
    for approver in &s.approvers {
        assert_eq!(
            reminders_in(&s, approver).len(),
            1,
            "one reply each (its uuid)"
        );
    }
}

#[tokio::test]
async fn a_decided_request_is_never_reminded() {
    let s = scene("message", true).await;
    let (_, reviews) = s.file_leave("short").await;
    s.press(&s.approvers[0], &reviews[0], "btn_approve", &[])
        .await
        .unwrap();
    s.bot.sweep().await;
    s.bot.sim.advance(80 * HOUR);
    s.bot.sweep().await;
    assert!(reminders_in(&s, &s.approvers[0]).is_empty());
    assert!(s.bot.sim.buzzes().is_empty());
}

#[tokio::test]
async fn terminal_feishu_errors_leave_the_job_dead_after_one_attempt_with_the_reason() {
    use cardbot::store::JobStatus;
    use cardbot_tests::simulator::FaultKind;
    for (delivery, method, path, code) in [
        ("message", "PATCH", "/open-apis/im/v1/messages/*", 230031),
        ("message", "PATCH", "/open-apis/im/v1/messages/*", 230011),
        ("entity", "PUT", "/open-apis/cardkit/v1/cards/*", 200750),
    ] {
        let s = scene(delivery, true).await;
        let (card, reviews) = s.file_leave("x").await;
        // Past the update token's 30 minutes, so the refresh goes out by PATCH / CardKit.
        s.bot.sim.advance(HOUR);
        s.press(&s.approvers[0], &reviews[0], "btn_approve", &[])
            .await
            .unwrap();
        s.bot
            .sim
            .fail_next(method, path, 10, FaultKind::Api { code });
        s.bot.sweep().await;
        let job = s
            .bot
            .store
            .get_job(&card, "refresh")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (job.status, job.attempts),
            (JobStatus::Dead, 1),
            "{code}: {job:?}"
        );
        let error = job.last_error.unwrap_or_default();
        assert!(
            error.starts_with("permanent:") && error.contains(&code.to_string()),
            "{error}"
        );
        // Never retried: later sweeps leave it.
        s.bot.sim.clear_faults();
        s.bot.sim.advance(HOUR);
        s.bot.sweep().await;
        let again = s
            .bot
            .store
            .get_job(&card, "refresh")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.status, again.attempts), (JobStatus::Dead, 1));
    }
}

// ---- lists ----

#[tokio::test]
async fn my_requests_and_pending_list_the_right_requests_read_by_query() {
    let s = scene("message", true).await;
    let mut cards = Vec::new();
    for reason in ["one", "two", "three"] {
        let card = s.ask().await;
        s.bot
            .file_leave(
                &s.requester,
                &card,
                &leave_form("personal", "2026-12-07", "2026-12-08", reason),
            )
            .await;
        cards.push(card);
        s.bot.sim.advance(std::time::Duration::from_secs(60));
    }
    s.bot.sweep().await;
    let b = &s.approvers[1];
    let reviews: Vec<_> = from_bot(&s.bot.sim.messages(&b.p2p_chat_id))
        .into_iter()
        .filter(|m| m.msg_type == "interactive")
        .map(|m| m.message_id)
        .collect();
    assert_eq!(reviews.len(), 3);
    // B decides the first request.
    s.press(b, &reviews[0], "btn_approve", &[]).await.unwrap();
    s.bot.sweep().await;

    let asked = s
        .bot
        .sim
        .send_user_message(&s.bot.event_url, ChatKind::P2p, "我的申请")
        .await;
    assert_eq!(asked.status, Some(200), "{}", asked.response_body);
    let list = from_bot(&s.bot.sim.messages(ids::P2P_CHAT_ID))
        .pop()
        .unwrap();
    assert_eq!(list.msg_type, "interactive");
    assert_eq!(list.parent_id.as_deref(), asked.message_id.as_deref());
    let text = s.card_text(&list.message_id);
    assert!(text.contains("我的申请"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("· ")).count(),
        3,
        "{text}"
    );
    assert_eq!(text.matches("请假审批中").count(), 2, "{text}");
    assert_eq!(text.matches("请假通过").count(), 1, "{text}");
    assert!(text.contains("2026-12-07 至 2026-12-08"), "{text}");

    let before = s.bot.sim.messages(&b.p2p_chat_id).len();
    let asked = s
        .bot
        .sim
        .send_message_as(&s.bot.event_url, b, ChatKind::P2p, "待我审批")
        .await;
    assert_eq!(asked.status, Some(200), "{}", asked.response_body);
    let answer: Vec<_> = from_bot(&s.bot.sim.messages(&b.p2p_chat_id))
        .into_iter()
        .skip(before - 1)
        .collect();
    let list = answer
        .iter()
        .find(|m| m.msg_type == "interactive" && m.parent_id == asked.message_id)
        .unwrap();
    let text = s.card_text(&list.message_id);
    assert!(text.contains("待我审批"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("· ")).count(),
        2,
        "only the waiting ones: {text}"
    );
    assert!(
        text.contains(&s.requester.open_id),
        "the requester shown: {text}"
    );
    // Each waiting request's card is linked by a reply to it.
    let linked: Vec<_> = answer
        .iter()
        .filter(|m| m.msg_type == "text")
        .filter_map(|m| m.parent_id.clone())
        .collect();
    assert_eq!(linked.len(), 2, "{answer:#?}");
    assert!(linked.contains(&reviews[1]) && linked.contains(&reviews[2]));
    // Someone with nothing waiting.
    let empty = s
        .bot
        .sim
        .send_user_message(&s.bot.event_url, ChatKind::P2p, "待我审批")
        .await;
    assert_eq!(empty.status, Some(200));
    let last = from_bot(&s.bot.sim.messages(ids::P2P_CHAT_ID))
        .pop()
        .unwrap();
    assert!(s.card_text(&last.message_id).contains("没有等你审批的申请"));
}

// ---- languages ----

fn english(s: &Scene, message: &str) -> String {
    s.bot.sim.card(message).unwrap().text_en
}

fn has_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[tokio::test]
async fn cards_render_in_english_for_an_english_viewer_in_both_modes() {
    for delivery in ["entity", "message"] {
        let s = scene(delivery, true).await;
        let card = s.ask().await;
        let en = english(&s, &card);
        assert!(
            en.contains("Choose what you need") && en.contains("[Leave]"),
            "{en}"
        );
        assert!(!has_chinese(&en), "{en}");
        let opened = s
            .press(&s.requester, &card, "btn_leave", &[])
            .await
            .unwrap();
        assert!(opened.card_updated);
        let en = english(&s, &card);
        assert!(en.contains("Leave type") && en.contains("[Submit]"), "{en}");
        assert!(!has_chinese(&en), "{en}");
        let (card, reviews) = {
            let filed = s
                .press(
                    &s.requester,
                    &card,
                    "btn_file",
                    &leave_form("sick", "2026-12-09", "2026-12-09", "flu"),
                )
                .await
                .unwrap();
            assert_eq!(
                filed.toast.as_ref().unwrap()["i18n"]["en_us"],
                "Your leave request was sent to the approver"
            );
            s.bot.sweep().await;
            let reviews: Vec<_> = s
                .approvers
                .iter()
                .map(|a| {
                    from_bot(&s.bot.sim.messages(&a.p2p_chat_id))[0]
                        .message_id
                        .clone()
                })
                .collect();
            (card, reviews)
        };
        let review = english(&s, &reviews[0]);
        for words in [
            "Leave approval",
            "Sick leave",
            "2026-12-09 to 2026-12-09",
            "[Approve]",
            "[Reject]",
        ] {
            assert!(review.contains(words), "{words}: {review}");
        }
        s.press(
            &s.approvers[0],
            &reviews[0],
            "btn_approve",
            &[("comment", json!("ok"))],
        )
        .await
        .unwrap();
        s.bot.sweep().await;
        for message in [&card, &reviews[0], &reviews[1]] {
            let en = english(&s, message);
            assert!(
                en.contains("Leave approved") && en.contains("approved"),
                "{en}"
            );
            assert!(!has_chinese(&en), "{en}");
            // The Chinese client sees Chinese.
            assert!(s.card_text(message).contains("请假通过"));
        }
        let told = texts(&s.bot.sim.messages(&s.requester.p2p_chat_id));
        assert!(
            told.iter()
                .any(|t| t.contains("Your leave request was approved")),
            "{told:?}"
        );
    }
}

#[tokio::test]
async fn the_tutorials_cardkit_walk_keeps_the_english() {
    let s = tutorial_scene("entity").await;
    let card = s.ask().await;
    s.bot
        .sim
        .click_card(&s.bot.card_url, &card, json!({"type": "leave"}))
        .await
        .unwrap();
    s.bot.sim.advance(std::time::Duration::from_secs(3));
    s.bot.sweep().await;
    let en = english(&s, &card);
    assert!(en.contains("Leave approved"), "{en}");
    assert!(
        en.contains("Please hand over your work"),
        "the streamed note in English: {en}"
    );
    assert!(!has_chinese(&en), "{en}");
    assert!(s.card_text(&card).contains("请假通过"));
}

// ---- review findings ----

/// A filed request whose first `unreachable` approvers Feishu refuses for good (230013, outside
/// the app's availability), after the sweep that sends the approvers' cards.
async fn filed_with_unreachable_approvers(unreachable: u32) -> (Scene, String, Summary) {
    use cardbot_tests::simulator::FaultKind;
    let s = scene("message", true).await;
    let card = s.ask().await;
    s.bot
        .file_leave(
            &s.requester,
            &card,
            &leave_form("annual", "2026-12-01", "2026-12-01", "x"),
        )
        .await;
    s.bot.sim.fail_next(
        "POST",
        "/open-apis/im/v1/messages",
        unreachable,
        FaultKind::Api { code: 230013 },
    );
    let summary = s.bot.sweep().await;
    (s, card, summary)
}

#[tokio::test]
async fn an_unreachable_approver_does_not_keep_the_others_from_their_cards() {
    // The first approver is outside the app's availability.
    let (s, card, summary) = filed_with_unreachable_approvers(1).await;
    assert_eq!(summary.failed, 0, "{summary:?}");
    let got: Vec<usize> = s
        .approvers
        .iter()
        .map(|a| from_bot(&s.bot.sim.messages(&a.p2p_chat_id)).len())
        .collect();
    assert_eq!(
        got.iter().sum::<usize>(),
        1,
        "one approver reached: {got:?}"
    );
    let (_, data) = s.request(&card).await;
    assert_eq!(data.notified.len(), 2);
    assert_eq!(data.review_cards.len(), 1);
}

#[tokio::test]
async fn when_no_approver_is_reachable_the_requester_is_told() {
    let (s, _, _) = filed_with_unreachable_approvers(2).await;
    let told = texts(&s.bot.sim.messages(&s.requester.p2p_chat_id));
    assert!(told.iter().any(|t| t.contains("无法送达")), "{told:?}");
}

#[tokio::test]
async fn the_only_configured_approvers_own_request_is_not_approved_by_the_simulation() {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let me = sim.config().user();
    let settings = [("APPROVER_OPEN_IDS", me.open_id.as_str())];
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Bot::start_with(sim.clone(), store, "entity", &settings).await;
    let card = bot.approval_card().await;
    let opened = sim
        .press_as(&bot.card_url, &me, &card, "btn_leave", &[])
        .await
        .unwrap();
    assert!(
        bot.sim.card_text(&card).unwrap().contains("[提交]"),
        "{opened:?}"
    );
    sim.press_as(
        &bot.card_url,
        &me,
        &card,
        "btn_file",
        &leave_form("annual", "2026-12-01", "2026-12-01", "x"),
    )
    .await
    .unwrap();
    bot.sweep().await;
    let state = bot.store.get_card(&card).await.unwrap().unwrap();
    let data = ApprovalData::from_value(&state.data).unwrap();
    assert_eq!(
        data.approvers,
        std::slice::from_ref(&me.open_id),
        "no leader: they decide themselves (resolved when the request was filed)"
    );
    assert_eq!(state.status, "leave_filed");
}

#[tokio::test]
async fn a_decision_after_the_ttl_is_refused_before_the_expiry_job_ran() {
    let s = scene("message", true).await;
    let (card, reviews) = s.file_leave("late").await;
    s.bot
        .sim
        .advance(std::time::Duration::from_secs(7 * 24 * 3600 + 60));
    // No sweep: the expiry job has not run yet.
    let late = s
        .press(&s.approvers[0], &reviews[0], "btn_approve", &[])
        .await
        .unwrap();
    assert!(toast(&late).contains("过期"), "{late:?}");
    assert_eq!(s.request(&card).await.0, "leave_filed", "nothing written");
}

#[tokio::test]
async fn lists_asked_in_a_group_go_to_the_askers_p2p_chat() {
    let s = scene("message", true).await;
    let asked = s
        .bot
        .sim
        .send_user_message(&s.bot.event_url, ChatKind::Group, "我的申请")
        .await;
    assert_eq!(asked.status, Some(200));
    assert!(from_bot(&s.bot.sim.messages(ids::GROUP_CHAT_ID)).is_empty());
    let mine = from_bot(&s.bot.sim.messages(ids::P2P_CHAT_ID));
    assert_eq!(mine.len(), 1);
    assert!(s.card_text(&mine[0].message_id).contains("我的申请"));
}
