//! CardKit v1 rules of the simulator over real HTTP: card JSON 2.0 checks, sequence, uuid, entities, streaming, elements.

mod simulator_support;

use std::time::Duration;

use serde_json::{json, Value};
use simulator_support::{approval_card, text_card, Api};

const CARDS: &str = "/open-apis/cardkit/v1/cards";

async fn create(api: &Api, card: &Value) -> simulator_support::Reply {
    api.call(
        "POST",
        CARDS,
        json!({"type": "card_json", "data": card.to_string()}),
    )
    .await
}

async fn settings(api: &Api, card_id: &str, settings: Value, seq: i64) -> simulator_support::Reply {
    api.call(
        "PATCH",
        &format!("{CARDS}/{card_id}/settings"),
        json!({"settings": settings.to_string(), "sequence": seq}),
    )
    .await
}

async fn stream(
    api: &Api,
    card_id: &str,
    el: &str,
    content: &str,
    seq: i64,
) -> simulator_support::Reply {
    api.call(
        "PUT",
        &format!("{CARDS}/{card_id}/elements/{el}/content"),
        json!({"content": content, "sequence": seq}),
    )
    .await
}

#[tokio::test]
async fn create_and_send_an_entity_once() {
    let api = Api::start().await;
    let card_id = api.create_entity(&approval_card()).await;
    assert_eq!(card_id.len(), 19);
    assert!(card_id.bytes().all(|b| b.is_ascii_digit()));
    let mid = api.send_entity(&card_id).await;
    let msg = api.sim.message(&mid).unwrap();
    assert_eq!(msg.card_id.as_deref(), Some(card_id.as_str()));
    let card = api.sim.card(&mid).unwrap();
    assert_eq!(card.card_id.as_deref(), Some(card_id.as_str()));
    assert_eq!(card.text, "# 审批\n请选择需要的操作\n[加班] [请假]");
    // Sent twice: Feishu's 230099 with sub-code 200780.
    let content = json!({"type": "card", "data": {"card_id": card_id}}).to_string();
    let r = api.send_card_content(content).await;
    r.err(230099);
    assert!(
        r.body["msg"].as_str().unwrap().contains("200780"),
        "{}",
        r.body
    );
    let r = api
        .send_card_content(
            json!({"type": "card", "data": {"card_id": "7000000000000000000"}}).to_string(),
        )
        .await;
    r.err(230099);
    assert_eq!(api.sim.all_messages().len(), 1);
}

#[tokio::test]
async fn entity_dies_after_14_days() {
    let api = Api::start().await;
    let sent = api.create_entity(&approval_card()).await;
    api.send_entity(&sent).await;
    let unsent = api.create_entity(&approval_card()).await;
    api.sim.advance(Duration::from_secs(14 * 24 * 3600 + 60));
    let api = Api {
        token: api.sim.issue_tenant_token(),
        ..api
    };
    settings(&api, &sent, json!({"config": {}}), 1)
        .await
        .err(200750);
    let r = api
        .send_card_content(json!({"type": "card", "data": {"card_id": unsent}}).to_string())
        .await;
    r.err(230099);
    assert!(r.body["msg"].as_str().unwrap().contains("200750"));
}

#[tokio::test]
async fn card_json_rules() {
    let api = Api::start().await;
    let mut bad_id = approval_card();
    bad_id["body"]["elements"][0]["element_id"] = json!("1md");
    create(&api, &bad_id).await.err(300301);
    bad_id["body"]["elements"][0]["element_id"] = json!("a_very_long_element_id_x");
    create(&api, &bad_id).await.err(300301);
    let mut dup = approval_card();
    dup["body"]["elements"][0]["element_id"] = json!("btn_ot");
    create(&api, &dup).await.err(300301);
    create(&api, &text_card("big", &"x".repeat(31 * 1024)))
        .await
        .err(200860);
    let many: Vec<Value> = (0..201)
        .map(|i| json!({"tag": "markdown", "content": format!("{i}")}))
        .collect();
    create(&api, &json!({"schema": "2.0", "body": {"elements": many}}))
        .await
        .err(300305);
    let ok: Vec<Value> = (0..200)
        .map(|i| json!({"tag": "markdown", "content": format!("{i}")}))
        .collect();
    create(&api, &json!({"schema": "2.0", "body": {"elements": ok}}))
        .await
        .ok();
    let mut not_shared = approval_card();
    not_shared["config"]["update_multi"] = json!(false);
    create(&api, &not_shared).await.err(300302);
    let mut unknown = approval_card();
    unknown["i18n_elements"] = json!({});
    create(&api, &unknown).await.err(200220);
    create(&api, &json!({"elements": []})).await.err(300303);
    api.call(
        "POST",
        CARDS,
        json!({"type": "card_json", "data": "{not json"}),
    )
    .await
    .err(200220);
    api.call(
        "POST",
        CARDS,
        json!({"type": "card_json", "data": approval_card()}),
    )
    .await
    .err(99992402);
}

#[tokio::test]
async fn sequence_is_required_int32_and_strictly_increasing() {
    let api = Api::start().await;
    let id = api.create_entity(&approval_card()).await;
    let path = format!("{CARDS}/{id}/settings");
    let s = json!({"config": {}}).to_string();
    api.call("PATCH", &path, json!({"settings": s}))
        .await
        .err(99992402);
    api.call("PATCH", &path, json!({"settings": s, "sequence": 0}))
        .await
        .err(99992402);
    api.call(
        "PATCH",
        &path,
        json!({"settings": s, "sequence": 2147483648i64}),
    )
    .await
    .err(99992402);
    api.call("PATCH", &path, json!({"settings": s, "sequence": "3"}))
        .await
        .err(99992402);
    api.call("PATCH", &path, json!({"settings": s, "sequence": 5}))
        .await
        .ok();
    api.call("PATCH", &path, json!({"settings": s, "sequence": 5}))
        .await
        .err(300317);
    api.call("PATCH", &path, json!({"settings": s, "sequence": 4}))
        .await
        .err(300317);
    // Across all write APIs, with gaps allowed.
    stream(&api, &id, "md_prompt", "x", 3).await.err(300317);
    api.call(
        "PATCH",
        &path,
        json!({"settings": s, "sequence": 2147483647}),
    )
    .await
    .ok();
    assert_eq!(
        api.sim.card_entity(&id).unwrap().last_sequence,
        Some(2147483647)
    );
}

#[tokio::test]
async fn uuid_makes_a_write_idempotent() {
    let api = Api::start().await;
    let id = api.create_entity(&approval_card()).await;
    let path = format!("{CARDS}/{id}/elements");
    let body = json!({"type": "append", "elements": json!([{"tag": "markdown", "element_id": "md_new", "content": "新"}]).to_string(), "sequence": 1, "uuid": "op-1"});
    api.call("POST", &path, body.clone()).await.ok();
    api.call("POST", &path, body.clone()).await.ok();
    let card = api.sim.card_entity(&id).unwrap();
    assert_eq!(card.history.len(), 2, "applied once");
    let mut other = body.clone();
    other["sequence"] = json!(2);
    api.call("POST", &path, other).await.err(200770);
}

#[tokio::test]
async fn streaming_text_only_in_streaming_mode_on_text_elements_and_closes_after_10_min() {
    let api = Api::start().await;
    let id = api.create_entity(&approval_card()).await;
    stream(&api, &id, "md_prompt", "一", 1).await.err(300309);
    settings(&api, &id, json!({"config": {"streaming_mode": true}}), 2)
        .await
        .ok();
    stream(&api, &id, "md_prompt", "一二", 3).await.ok();
    stream(&api, &id, "btn_ot", "x", 4).await.err(300310);
    let card = api.sim.card_entity(&id).unwrap();
    assert!(card.streaming);
    assert_eq!(card.card["body"]["elements"][0]["content"], "一二");
    api.sim.advance(Duration::from_secs(9 * 60 + 50));
    stream(&api, &id, "md_prompt", "一二三", 5).await.ok();
    api.sim.advance(Duration::from_secs(11));
    stream(&api, &id, "md_prompt", "一二三四", 6)
        .await
        .err(200850);
    let card = api.sim.card_entity(&id).unwrap();
    assert!(!card.streaming);
    assert_eq!(card.card["config"]["streaming_mode"], false);
    assert_eq!(card.history.last().unwrap().via, "streaming_timeout");
    // Switching it on again restarts the 10 minutes.
    settings(&api, &id, json!({"config": {"streaming_mode": true}}), 7)
        .await
        .ok();
    stream(&api, &id, "md_prompt", "再来", 8).await.ok();
    settings(&api, &id, json!({"config": {"streaming_mode": false}}), 9)
        .await
        .ok();
    stream(&api, &id, "md_prompt", "关", 10).await.err(300309);
}

#[tokio::test]
async fn element_apis_edit_the_card_users_see() {
    let api = Api::start().await;
    let id = api.create_entity(&approval_card()).await;
    let mid = api.send_entity(&id).await;
    let els = |v: Value| v.to_string();
    let p = |s: &str| format!("{CARDS}/{id}{s}");
    api.call("POST", &p("/elements"), json!({"type": "insert_before", "target_element_id": "md_prompt", "elements": els(json!([{"tag": "markdown", "element_id": "md_top", "content": "顶部"}])), "sequence": 1})).await.ok();
    api.call("POST", &p("/elements"), json!({"type": "insert_after", "target_element_id": "md_prompt", "elements": els(json!([{"tag": "hr", "element_id": "hr_1"}])), "sequence": 2})).await.ok();
    api.call("POST", &p("/elements"), json!({"type": "append", "elements": els(json!([{"tag": "markdown", "element_id": "md_end", "content": "结尾"}])), "sequence": 3})).await.ok();
    api.call("POST", &p("/elements"), json!({"type": "insert_before", "target_element_id": "nope", "elements": els(json!([{"tag": "hr"}])), "sequence": 4})).await.err(300315);
    api.call("POST", &p("/elements"), json!({"type": "append", "elements": els(json!([{"tag": "hr", "element_id": "md_end"}])), "sequence": 5})).await.err(300301);
    api.call(
        "PATCH",
        &p("/elements/md_top"),
        json!({"partial_element": json!({"content": "顶部已改"}).to_string(), "sequence": 6}),
    )
    .await
    .ok();
    api.call(
        "PATCH",
        &p("/elements/md_top"),
        json!({"partial_element": json!({"tag": "button"}).to_string(), "sequence": 7}),
    )
    .await
    .err(300312);
    api.call("PUT", &p("/elements/md_end"), json!({"element": json!({"tag": "markdown", "content": "新结尾"}).to_string(), "sequence": 8})).await.ok();
    api.call("DELETE", &p("/elements/btn_row"), json!({"sequence": 9}))
        .await
        .ok();
    api.call("DELETE", &p("/elements/btn_row"), json!({"sequence": 10}))
        .await
        .err(300314);
    let card = api.sim.card(&mid).unwrap();
    assert_eq!(card.text, "# 审批\n顶部已改\n请选择需要的操作\n---\n新结尾");
    assert_eq!(
        card.card["body"]["elements"][3]["element_id"], "md_end",
        "replaced element keeps its id"
    );
    // Full update.
    api.call("PUT", &p(""), json!({"card": {"type": "card_json", "data": text_card("请假通过", "已同意").to_string()}, "sequence": 11})).await.ok();
    assert_eq!(api.sim.card(&mid).unwrap().text, "# 请假通过\n已同意");
    let vias: Vec<String> = api
        .sim
        .card(&mid)
        .unwrap()
        .history
        .iter()
        .map(|h| h.via.clone())
        .collect();
    assert_eq!(vias.first().unwrap(), "cardkit.create");
    assert_eq!(vias.last().unwrap(), "cardkit.update");
}

#[tokio::test]
async fn batch_update_applies_all_actions_or_none() {
    let api = Api::start().await;
    let id = api.create_entity(&approval_card()).await;
    let path = format!("{CARDS}/{id}/batch_update");
    let actions = json!([
        {"action": "partial_update_setting", "params": {"settings": {"config": {"summary": {"content": "已处理"}}}}},
        {"action": "add_elements", "params": {"type": "insert_before", "target_element_id": "md_prompt", "elements": [{"tag": "markdown", "element_id": "md_1", "content": "一"}]}},
        {"action": "delete_elements", "params": {"element_ids": ["btn_row"]}},
        {"action": "partial_update_element", "params": {"element_id": "md_prompt", "partial_element": {"content": "已选择"}}},
        {"action": "update_element", "params": {"element_id": "md_1", "element": {"tag": "markdown", "content": "第一"}}}
    ]);
    api.call(
        "POST",
        &path,
        json!({"actions": actions.to_string(), "sequence": 1}),
    )
    .await
    .ok();
    let card = api.sim.card_entity(&id).unwrap();
    assert_eq!(card.text, "# 审批\n第一\n已选择");
    assert_eq!(card.card["config"]["summary"]["content"], "已处理");
    let failing = json!([
        {"action": "delete_elements", "params": {"element_ids": ["md_1"]}},
        {"action": "delete_elements", "params": {"element_ids": ["nope"]}}
    ]);
    api.call(
        "POST",
        &path,
        json!({"actions": failing.to_string(), "sequence": 2}),
    )
    .await
    .err(300314);
    assert_eq!(
        api.sim.card_entity(&id).unwrap().text,
        "# 审批\n第一\n已选择",
        "nothing applied"
    );
    api.call("POST", &path, json!({"actions": actions, "sequence": 3}))
        .await
        .err(99992402);
}

#[tokio::test]
async fn settings_accept_only_config_and_card_link_and_keep_update_multi_true() {
    let api = Api::start().await;
    let id = api.create_entity(&approval_card()).await;
    settings(&api, &id, json!({"header": {}}), 1)
        .await
        .err(300122);
    settings(&api, &id, json!({"config": {"update_multi": false}}), 2)
        .await
        .err(300302);
    settings(
        &api,
        &id,
        json!({"card_link": {"url": "https://example.com"}}),
        3,
    )
    .await
    .ok();
    assert_eq!(
        api.sim.card_entity(&id).unwrap().card["card_link"]["url"],
        "https://example.com"
    );
}

#[tokio::test]
async fn writes_to_unknown_cards_and_id_convert() {
    let api = Api::start().await;
    settings(&api, "7000000000000000001", json!({"config": {}}), 1)
        .await
        .err(200740);
    let mid = api.send_card(&approval_card()).await;
    let r = api
        .call(
            "POST",
            &format!("{CARDS}/id_convert"),
            json!({"message_id": mid}),
        )
        .await
        .ok();
    let card_id = r["card_id"].as_str().unwrap().to_owned();
    stream(&api, &card_id, "md_prompt", "x", 1)
        .await
        .err(300309);
    settings(
        &api,
        &card_id,
        json!({"config": {"summary": {"content": "s"}}}),
        2,
    )
    .await
    .ok();
    assert_eq!(
        api.sim.card(&mid).unwrap().card["config"]["summary"]["content"],
        "s"
    );
    let again = api
        .call(
            "POST",
            &format!("{CARDS}/id_convert"),
            json!({"message_id": mid}),
        )
        .await
        .ok();
    assert_eq!(again["card_id"], card_id.as_str());
}
