//! Approval definitions end to end, on DynamoDB Local and the simulator over HTTP, in both
//! delivery modes: a team's own request type from a file (`docs/definitions.md`), offered beside
//! the built-in 请假 and 加班, its form checked field by field, routed to the definition's own
//! approver and decided; a new version applied while a request is filed (the request keeps its
//! version); a dropped type's button; and a table written by the previous version (the fixed
//! 请假 form) served unchanged. Assertions are on what the chats show and what the table holds.

use std::sync::Arc;

use cardbot::approval::definition::{file, DefinitionRef, RequestKind};
use cardbot::approval::ApprovalData;
use cardbot::definitions::{apply, SELF_BUILT_TENANT};
use cardbot::store::dynamo::DynamoStore;
use cardbot::store::{CardStore, JobStore};
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::{leave_form, toast, Bot};
use cardbot_tests::simulator::{ids, CallbackDelivery, ChatKind, SimConfig, SimUser, Simulator};
use serde_json::{json, Value};

/// The issue's file, with the simulator's first added user as the expense approver.
fn expense_file(approver: &str) -> String {
    format!(
        r#"definitions:
  - id: expense                       # ^[a-z][a-z0-9_]{{0,31}}$, unique
    name: {{zh_cn: 费用报销, en_us: Expense}}
    fields:
      - {{name: amount, type: amount, label: {{zh_cn: 金额, en_us: Amount}}, required: true,
         min: "0.01", max: "200000", currency: CNY}}
      - {{name: category, type: select, label: {{zh_cn: 类别, en_us: Category}}, required: true,
         options: [{{value: travel, label: {{zh_cn: 差旅, en_us: Travel}}}},
                   {{value: office, label: {{zh_cn: 办公, en_us: Office}}}}]}}
      - {{name: period, type: date_range, label: {{zh_cn: 日期, en_us: Dates}}, required: true}}
      - {{name: reason, type: textarea, label: {{zh_cn: 事由, en_us: Reason}}, required: true, max_len: 300}}
    approvers: {{open_ids: [{approver}]}}
"#
    )
}

struct Scene {
    bot: Bot<DynamoStore>,
    requester: SimUser,
    approver: SimUser,
}

/// A deployment with no approver of its own (`APPROVAL_FALLBACK=refuse`): only a definition's
/// approvers decide anything.
async fn scene(delivery: &str) -> Scene {
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approver = sim.add_users(1).remove(0);
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let settings = [
        ("APPROVER_FROM_LEADER", "false"),
        ("APPROVAL_FALLBACK", "refuse"),
    ];
    let bot = Bot::start_with(sim.clone(), store, delivery, &settings).await;
    Scene {
        requester: sim.config().user(),
        bot,
        approver,
    }
}

fn expense_form(amount: &str, category: &str, reason: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("amount", json!(amount)),
        ("category", json!(category)),
        ("start_period", json!("2026-12-01 +0800")),
        ("end_period", json!("2026-12-03 +0800")),
        ("reason", json!(reason)),
    ]
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

    fn card_text(&self, message_id: &str) -> String {
        self.bot.sim.card_text(message_id).unwrap()
    }

    fn card_json(&self, message_id: &str) -> String {
        self.bot.sim.card(message_id).unwrap().card.to_string()
    }

    /// The bot's cards in the requester's chat, oldest first.
    fn cards(&self) -> Vec<String> {
        self.bot
            .bot_messages(ids::P2P_CHAT_ID)
            .into_iter()
            .filter(|m| m.msg_type == "interactive")
            .map(|m| m.message_id)
            .collect()
    }

    /// Sends `text` and returns the card the bot answers with: sent at once, or by the updater
    /// when the reply was queued (a busy machine runs past the answer budget).
    async fn card_for(&self, text: &str) -> String {
        let before = self.cards().len();
        let delivery = self
            .bot
            .sim
            .send_user_message(&self.bot.event_url, ChatKind::P2p, text)
            .await;
        assert_eq!(delivery.status, Some(200), "{}", delivery.response_body);
        if self.cards().len() == before {
            self.bot.sweep().await;
        }
        let cards = self.cards();
        assert_eq!(cards.len(), before + 1, "one card answers {text}");
        cards[before].clone()
    }

    /// `审批` → the approval card; returns its message_id.
    async fn ask(&self) -> String {
        self.card_for("审批").await
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

    /// The approver's cards, newest last.
    fn review_cards(&self) -> Vec<String> {
        self.bot
            .bot_messages(&self.approver.p2p_chat_id)
            .into_iter()
            .filter(|m| m.msg_type == "interactive")
            .map(|m| m.message_id)
            .collect()
    }

    /// The requester's 我的申请 list as the card shows it.
    async fn my_requests(&self) -> String {
        let list = self.card_for("我的申请").await;
        self.card_text(&list)
    }

    /// 费用报销 → the form → a valid submit; returns the requester's card.
    async fn file_expense(&self, reason: &str) -> String {
        let card = self.ask().await;
        let opened = self.press(&self.requester, &card, "btn_expense", &[]).await;
        assert!(opened.card_updated, "{opened:?}");
        let filed = self
            .press(
                &self.requester,
                &card,
                "btn_file",
                &expense_form("1234.5", "travel", reason),
            )
            .await;
        assert!(toast(&filed).contains("已提交"), "{filed:?}");
        card
    }
}

async fn an_expense_is_offered_checked_filed_and_decided(delivery: &str) {
    let s = scene(delivery).await;
    s.apply(&expense_file(&s.approver.open_id)).await;
    let card = s.ask().await;
    let offered = s.card_text(&card);
    for name in ["请假", "加班", "费用报销"] {
        assert!(offered.contains(name), "{name} offered: {offered}");
    }
    // The deployment has no approver: the built-in types are refused, not approved by nobody.
    let leave = s.press(&s.requester, &card, "btn_leave", &[]).await;
    assert!(toast(&leave).contains("未配置审批人"), "{leave:?}");
    // The expense names its approver: its form opens, with its four fields.
    let opened = s.press(&s.requester, &card, "btn_expense", &[]).await;
    assert!(opened.card_updated, "{opened:?}");
    let form = s.card_json(&card);
    for name in [
        "\"amount\"",
        "\"category\"",
        "\"start_period\"",
        "\"end_period\"",
        "\"reason\"",
        "btn_file",
    ] {
        assert!(form.contains(name), "the form has {name}: {form}");
    }
    let before = s.request(&card).await;
    assert_eq!(before.0, "expense_draft");
    assert_eq!(
        before.1.definition,
        Some(DefinitionRef::new(RequestKind::new("expense").unwrap(), 1))
    );
    for bad in ["abc", "-1", "1.005", "200000.01"] {
        let refused = s
            .press(
                &s.requester,
                &card,
                "btn_file",
                &expense_form(bad, "travel", "taxi"),
            )
            .await;
        assert!(toast(&refused).contains("金额"), "{bad}: {refused:?}");
        assert!(!refused.card_updated, "{bad}");
        assert_eq!(s.request(&card).await, before, "{bad}: nothing filed");
    }
    let jobs = s.bot.store.jobs_for_card(&card).await.unwrap();
    assert!(
        jobs.iter().all(|j| j.kind != "notify_approvers"),
        "{jobs:?}"
    );
    let filed = s
        .press(
            &s.requester,
            &card,
            "btn_file",
            &expense_form("1234.5", "travel", "client visit"),
        )
        .await;
    assert!(toast(&filed).contains("费用报销申请已提交"), "{filed:?}");
    let (status, data) = s.request(&card).await;
    assert_eq!(status, "expense_filed");
    assert_eq!(data.values.as_ref().unwrap()["amount"], "1234.50");
    let summary = s.bot.sweep().await;
    assert_eq!(summary.failed, 0, "{summary:?}");
    let (_, data) = s.request(&card).await;
    assert_eq!(data.approvers, std::slice::from_ref(&s.approver.open_id));
    let reviews = s.review_cards();
    assert_eq!(reviews.len(), 1, "the definition's approver gets the card");
    let review = s.card_text(&reviews[0]);
    for words in [
        "费用报销审批",
        "1234.50 CNY",
        "差旅",
        "2026-12-01 至 2026-12-03",
        "client visit",
    ] {
        assert!(review.contains(words), "{words}: {review}");
    }
    let decided = s.press(&s.approver, &reviews[0], "btn_approve", &[]).await;
    assert_eq!(toast(&decided), "已同意");
    assert_eq!(s.request(&card).await.0, "expense_approved");
    s.bot.sweep().await;
    assert!(s.card_text(&card).contains("费用报销通过"));
    let told = s.bot.bot_messages(ids::P2P_CHAT_ID);
    assert!(
        told.iter()
            .any(|m| m.msg_type == "text" && m.content.contains("你的费用报销申请已通过")),
        "the requester is told"
    );
}

#[tokio::test]
async fn an_expense_is_offered_checked_filed_and_decided_entity_mode() {
    an_expense_is_offered_checked_filed_and_decided("entity").await;
}

#[tokio::test]
async fn an_expense_is_offered_checked_filed_and_decided_message_mode() {
    an_expense_is_offered_checked_filed_and_decided("message").await;
}

async fn a_new_version_leaves_filed_requests_as_filed(delivery: &str) {
    let s = scene(delivery).await;
    let v1 = expense_file(&s.approver.open_id);
    s.apply(&v1).await;
    let old = s.file_expense("taxi").await;
    s.bot.sweep().await;
    let review = s.review_cards().remove(0);
    let list_before = s.my_requests().await;
    let card_before = s.card_text(&old);
    let review_before = s.card_text(&review);
    // Version 2 drops the category.
    let start = v1.find("      - {name: category").unwrap();
    let end = v1.find("      - {name: period").unwrap();
    let v2 = format!("{}{}", &v1[..start], &v1[end..]);
    s.apply(&v2).await;
    assert_eq!(
        s.my_requests().await,
        list_before,
        "its list line is unchanged"
    );
    // Shown again after a decision, the filed request's cards still have the category.
    let decided = s.press(&s.approver, &review, "btn_approve", &[]).await;
    assert_eq!(toast(&decided), "已同意");
    s.bot.sweep().await;
    let review_after = s.card_text(&review);
    assert!(review_after.contains("差旅"), "{review_after}");
    assert!(review_before.contains("差旅"), "{review_before}");
    assert!(s.card_text(&old).contains("差旅"), "{card_before}");
    let (_, data) = s.request(&old).await;
    assert_eq!(data.definition.unwrap().version, 1);
    // A new request uses version 2: no category on its form or its values.
    let card = s.ask().await;
    s.press(&s.requester, &card, "btn_expense", &[]).await;
    assert!(!s.card_json(&card).contains("\"category\""));
    let filed = s
        .press(
            &s.requester,
            &card,
            "btn_file",
            &[
                ("amount", json!("8")),
                ("start_period", json!("2026-12-01 +0800")),
                ("end_period", json!("2026-12-01 +0800")),
                ("reason", json!("lunch")),
            ],
        )
        .await;
    assert!(toast(&filed).contains("已提交"), "{filed:?}");
    let (_, data) = s.request(&card).await;
    assert_eq!(data.definition.unwrap().version, 2);
    assert!(!data.values.unwrap().contains_key("category"));
}

#[tokio::test]
async fn a_new_version_leaves_filed_requests_as_filed_entity_mode() {
    a_new_version_leaves_filed_requests_as_filed("entity").await;
}

#[tokio::test]
async fn a_new_version_leaves_filed_requests_as_filed_message_mode() {
    a_new_version_leaves_filed_requests_as_filed("message").await;
}

#[tokio::test]
async fn a_dropped_types_button_answers_a_toast_and_writes_nothing() {
    let s = scene("entity").await;
    let card = s.ask().await;
    assert!(s.card_text(&card).contains("加班"));
    s.apply(&format!(
        "{}drop: [work_overtime]\n",
        expense_file(&s.approver.open_id)
    ))
    .await;
    let before = s.bot.store.get_card(&card).await.unwrap();
    let stale = s.press(&s.requester, &card, "btn_overtime", &[]).await;
    assert!(toast(&stale).contains("已停用"), "{stale:?}");
    assert!(!stale.card_updated);
    assert_eq!(s.bot.store.get_card(&card).await.unwrap(), before);
    let fresh = s.ask().await;
    let offered = s.card_text(&fresh);
    assert!(
        !offered.contains("加班") && offered.contains("费用报销"),
        "{offered}"
    );
}

/// A request filed by the previous version (the fixed 请假 form, `data.form`, no pinned
/// definition) is listed, decided and shown as before. The item is written as that version
/// wrote it: the request's `data` is replaced by the fixture's shape.
#[tokio::test]
async fn a_table_written_by_the_previous_version_is_served_unchanged() {
    for delivery in ["entity", "message"] {
        let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
        let approver = sim.add_users(1).remove(0);
        let store = Arc::new(dynamodb_local::fresh_store().await);
        let settings = [("APPROVER_OPEN_IDS", approver.open_id.as_str())];
        let bot = Bot::start_with(sim.clone(), store, delivery, &settings).await;
        let requester = sim.config().user();
        let card = bot.approval_card().await;
        bot.file_leave(
            &requester,
            &card,
            &leave_form("annual", "2026-12-01", "2026-12-03", "family trip"),
        )
        .await;
        bot.sweep().await;
        // Rewrite the request as the previous version stored it.
        let fixture: Value =
            serde_json::from_str(include_str!("data/v27_filed_leave.json")).unwrap();
        let mut state = bot.store.get_card(&card).await.unwrap().unwrap();
        let mut data = state.data.as_object().unwrap().clone();
        data.remove("definition");
        data.remove("values");
        data.insert("form".into(), fixture["data"]["form"].clone());
        state.data = Value::Object(data);
        state.status = fixture["status"].as_str().unwrap().to_owned();
        bot.store.update_card(&state).await.unwrap();
        let stored = bot.store.get_card(&card).await.unwrap().unwrap();
        assert!(stored.data.get("definition").is_none() && stored.data.get("form").is_some());
        // 我的申请 lists it with its dates.
        let cards = || {
            bot.bot_messages(ids::P2P_CHAT_ID)
                .into_iter()
                .filter(|m| m.msg_type == "interactive")
                .collect::<Vec<_>>()
        };
        let before = cards().len();
        sim.send_user_message(&bot.event_url, ChatKind::P2p, "我的申请")
            .await;
        if cards().len() == before {
            // Queued for the updater on a busy machine.
            bot.sweep().await;
        }
        let list = cards().remove(before);
        let listed = sim.card_text(&list.message_id).unwrap();
        assert!(listed.contains("请假 2026-12-01 至 2026-12-03"), "{listed}");
        assert!(listed.contains("请假审批中"), "{listed}");
        // Its approver decides it on the card sent before the upgrade.
        let review = bot
            .bot_messages(&approver.p2p_chat_id)
            .into_iter()
            .find(|m| m.msg_type == "interactive")
            .unwrap()
            .message_id;
        let decided = sim
            .press_as(&bot.card_url, &approver, &review, "btn_approve", &[])
            .await
            .unwrap();
        assert_eq!(
            decided.toast.as_ref().unwrap()["content"],
            "已同意",
            "{decided:?}"
        );
        let shown = sim.card_text(&review).unwrap();
        for words in [
            "请假通过",
            "年假",
            "2026-12-01 至 2026-12-03",
            "family trip",
        ] {
            assert!(shown.contains(words), "{words}: {shown}");
        }
        let after = bot.store.get_card(&card).await.unwrap().unwrap();
        assert_eq!(after.status, "leave_approved");
    }
}

/// `make run` reads `APPROVAL_DEFINITIONS` before it starts anything: a broken file stops it,
/// naming each problem with its line; a good one is kept for the table.
#[test]
fn make_run_refuses_to_start_on_a_broken_definitions_file() {
    use cardbot_tests::local_stack::Options;
    let dir = std::env::temp_dir().join(format!("cardbot-make-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "definitions:\n  - id: trip\n    name: 出差\n    fields:\n      - {name: days, type: nights, label: 天数}\n      - {name: city, type: select, label: 城市}\n",
    )
    .unwrap();
    let lookup = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |name: &str| (name == "APPROVAL_DEFINITIONS").then(|| path.clone())
    };
    let refused = Options::from_lookup(lookup(&broken)).unwrap_err();
    assert!(refused.contains("broken.yaml:5:"), "{refused}");
    assert!(refused.contains("unknown type `nights`"), "{refused}");
    assert!(refused.contains("broken.yaml:6:"), "{refused}");
    assert!(refused.contains("needs `options`"), "{refused}");
    let missing = Options::from_lookup(lookup(&dir.join("absent.yaml"))).unwrap_err();
    assert!(missing.contains("cannot read"), "{missing}");
    let good = dir.join("good.yaml");
    std::fs::write(&good, expense_file("ou_84aad35d084aa403a838cf73ee18467")).unwrap();
    let options = Options::from_lookup(lookup(&good)).unwrap();
    let (_, set) = options.definitions.unwrap();
    assert_eq!(set.definitions[0].id.as_str(), "expense");
}

/// More types than fit as buttons: the 审批 card is a select and 发起; the chosen type's form
/// opens, and a type dropped since the card was drawn gets the toast.
#[tokio::test]
async fn more_types_than_fit_are_chosen_from_a_select() {
    let s = scene("message").await;
    let mut file = expense_file(&s.approver.open_id);
    for id in ["trip", "purchase", "access"] {
        file.push_str(&format!(
            "  - {{id: {id}, name: {id}, fields: [{{name: what, type: text, label: 内容}}], approvers: {{open_ids: [{}]}}}}\n",
            s.approver.open_id
        ));
    }
    s.apply(&file).await;
    let card = s.ask().await;
    let json = s.card_json(&card);
    assert!(
        json.contains("btn_choose") && !json.contains("btn_expense"),
        "{json}"
    );
    let opened = s
        .press(
            &s.requester,
            &card,
            "btn_choose",
            &[("definition", json!("expense"))],
        )
        .await;
    assert!(opened.card_updated, "{opened:?}");
    assert_eq!(s.request(&card).await.0, "expense_draft");
    assert!(s.card_json(&card).contains("\"start_period\""));
    // Another card, its type dropped meanwhile.
    let second = s.ask().await;
    s.apply(&expense_file(&s.approver.open_id)).await;
    let before = s.bot.store.get_card(&second).await.unwrap();
    let stale = s
        .press(
            &s.requester,
            &second,
            "btn_choose",
            &[("definition", json!("trip"))],
        )
        .await;
    assert!(toast(&stale).contains("已停用"), "{stale:?}");
    assert_eq!(s.bot.store.get_card(&second).await.unwrap(), before);
}
