//! The demo conversations `make run` plays through the Feishu simulator. With an approver (the
//! default): `审批`, the card, 请假, the form filled and submitted, the approver's card in their chat,
//! 同意 with a comment, and the requester's card turning 请假通过 with the text telling them. The
//! tutorial's (`CARDBOT_DEMO=tutorial`): `审批`, the card, a click on 请假, and the card turning
//! 请假通过 once the updater has delivered the simulated approval.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::simulator::{ChatKind, ChatMessage, Sender, SimUser, Simulator};

/// The command the user sends.
pub const COMMAND: &str = "审批";
/// The button the user clicks.
pub const LEAVE_BUTTON: &str = "请假";
/// What the card says once the (simulated) approval went through.
pub const LEAVE_APPROVED: &str = "请假通过";

/// How long the bot may take to answer `审批` with its card.
const CARD_TIMEOUT: Duration = Duration::from_secs(20);
/// The delayed update comes by the stream (seconds) or at the latest with the next sweep (a minute).
const APPROVAL_TIMEOUT: Duration = Duration::from_secs(90);

/// The callback `value` of the button labelled `label` (card JSON 2.0 `behaviors`, or 1.0 `value`).
pub fn button_value(card: &Value, label: &str) -> Option<Value> {
    match card {
        Value::Object(map) => {
            let is_button = map.get("tag").and_then(Value::as_str) == Some("button");
            let text = card.pointer("/text/content").and_then(Value::as_str);
            if is_button && text.map(str::trim) == Some(label) {
                let from_behaviors = map
                    .get("behaviors")
                    .and_then(Value::as_array)
                    .and_then(|list| {
                        list.iter()
                            .find(|b| b.get("type").and_then(Value::as_str) == Some("callback"))
                    })
                    .and_then(|b| b.get("value"))
                    .cloned();
                return from_behaviors.or_else(|| map.get("value").cloned());
            }
            map.values().find_map(|v| button_value(v, label))
        }
        Value::Array(list) => list.iter().find_map(|v| button_value(v, label)),
        _ => None,
    }
}

/// Text of a text message's `content` (`{"text": …}`), or the raw content.
pub fn message_text(message: &ChatMessage) -> String {
    serde_json::from_str::<Value>(&message.content)
        .ok()
        .and_then(|c| c.get("text").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| message.content.clone())
}

/// A card's text rendering in a box, indented.
pub fn boxed(text: &str) -> String {
    let mut out = String::from("      ┌────────────────────────────────\n");
    for line in text.lines() {
        out.push_str("      │ ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("      └────────────────────────────────");
    out
}

fn say(line: impl AsRef<str>) {
    println!("{}", line.as_ref());
}

fn from_bot(message: &ChatMessage) -> bool {
    matches!(message.sender, Sender::App { .. })
}

/// Plays the conversation: the real approval with `approver`, else the tutorial's; `Ok` with the
/// requester's card's message id once it shows 请假通过.
pub async fn play(
    sim: &Simulator,
    event_url: &str,
    card_url: &str,
    approver: Option<&SimUser>,
) -> Result<String, String> {
    match approver {
        Some(approver) => play_approval(sim, event_url, card_url, approver).await,
        None => play_tutorial(sim, event_url, card_url).await,
    }
}

/// The requester sends `审批`; prints the bot's answers; the card's message id.
async fn ask(sim: &Simulator, event_url: &str) -> Result<String, String> {
    let chat = sim.config().p2p_chat_id.clone();
    let user = sim.config().user_name.clone();
    let seen = sim.messages(&chat).len();

    say("");
    say("── demo: a user talks to the bot through the Feishu simulator ──");
    say(format!("  {user}: {COMMAND}"));
    let delivery = sim
        .send_user_message(event_url, ChatKind::P2p, COMMAND)
        .await;
    say(format!(
        "    (im.message.receive_v1, encrypted and signed → event-callback: {} in {} ms)",
        delivery
            .status
            .map(|s| format!("HTTP {s}"))
            .or(delivery.error.clone())
            .unwrap_or_default(),
        delivery.elapsed_ms
    ));
    if delivery.status != Some(200) {
        return Err(format!(
            "event-callback answered {}: {}",
            delivery
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| delivery.error.clone().unwrap_or_default()),
            delivery.response_body.chars().take(200).collect::<String>()
        ));
    }

    // The bot's answers: the text, then the card.
    let started = Instant::now();
    let mut shown = seen;
    let card_message = loop {
        let messages = sim.messages(&chat);
        let mut card = None;
        for message in messages.iter().skip(shown).filter(|m| from_bot(m)) {
            if message.msg_type == "interactive" {
                let text = sim.card_text(&message.message_id).unwrap_or_default();
                say("  cardbot: (card)");
                say(boxed(&text));
                card = Some(message.message_id.clone());
            } else {
                say(format!("  cardbot: {}", message_text(message)));
            }
        }
        shown = messages.len();
        if let Some(id) = card {
            break id;
        }
        if started.elapsed() > CARD_TIMEOUT {
            return Err(format!("no card from the bot within {CARD_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Ok(card_message)
}

/// The status line of a callback's answer.
fn answered(what: &str, delivery: &crate::simulator::Delivery) -> String {
    format!(
        "    ({what}, encrypted and signed → card-action: {} in {} ms)",
        delivery
            .status
            .map(|s| format!("HTTP {s}"))
            .or(delivery.error.clone())
            .unwrap_or_default(),
        delivery.elapsed_ms
    )
}

/// Prints a callback's outcome as a user sees it: the toast and the card the answer put in place.
fn show_answer(
    sim: &Simulator,
    message_id: &str,
    click: &crate::simulator::CallbackDelivery,
) -> Result<(), String> {
    say(answered("card.action.trigger", &click.delivery));
    if let Some(code) = click.client_error {
        return Err(format!("the Feishu client shows error {code}"));
    }
    if let Some(toast) = click
        .toast
        .as_ref()
        .and_then(|t| t.get("content"))
        .and_then(Value::as_str)
    {
        say(format!("  toast: {toast}"));
    }
    if click.card_updated {
        say("  the card, updated by the callback's answer:");
        say(boxed(&sim.card_text(message_id).unwrap_or_default()));
    }
    Ok(())
}

/// Waits until `found` gives something (the updater works after the answers), up to `APPROVAL_TIMEOUT`.
async fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> Result<T, String> {
    let started = Instant::now();
    loop {
        if let Some(value) = found() {
            return Ok(value);
        }
        if started.elapsed() > APPROVAL_TIMEOUT {
            return Err(format!("{what} did not come within {APPROVAL_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The real approval: the requester files 请假 through the form; the approver decides 同意 in
/// their own chat; both sides are printed.
async fn play_approval(
    sim: &Simulator,
    event_url: &str,
    card_url: &str,
    approver: &SimUser,
) -> Result<String, String> {
    let requester = sim.config().user();
    let card_message = ask(sim, event_url).await?;
    let press = |who: &SimUser, message: &str, button: &str, form: Vec<(&'static str, Value)>| {
        let (who, message, button) = (who.clone(), message.to_owned(), button.to_owned());
        async move {
            sim.press_as(card_url, &who, &message, &button, &form)
                .await
                .map_err(|e| e.to_string())
        }
    };
    say(format!("  {} clicks [{LEAVE_BUTTON}]", requester.name));
    let opened = press(&requester, &card_message, "btn_leave", vec![]).await?;
    show_answer(sim, &card_message, &opened)?;

    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC))
        .date();
    let end = today
        .checked_add(jiff::Span::new().days(2))
        .unwrap_or(today);
    let form = vec![
        ("leave_type", Value::from("annual")),
        ("start_date", Value::from(format!("{today} +0800"))),
        ("end_date", Value::from(format!("{end} +0800"))),
        ("reason", Value::from("家里有事，需请假三天")),
    ];
    say(format!(
        "  {} fills the form (年假, {today} 至 {end}, 家里有事，需请假三天) and clicks [提交]",
        requester.name
    ));
    let filed = press(&requester, &card_message, "btn_file", form).await?;
    show_answer(sim, &card_message, &filed)?;

    say(format!(
        "  … waiting for the card-updater to send {} their card",
        approver.name
    ));
    let review = wait_for("the approver's card", || {
        sim.messages(&approver.p2p_chat_id)
            .into_iter()
            .find(|m| from_bot(m) && m.msg_type == "interactive")
            .map(|m| m.message_id)
    })
    .await?;
    say(format!("── {}'s chat with the bot ──", approver.name));
    say("  cardbot: (card)");
    say(boxed(&sim.card_text(&review).unwrap_or_default()));
    say(format!(
        "  {} writes 同意，注意工作交接 and clicks [同意]",
        approver.name
    ));
    let decided = press(
        approver,
        &review,
        "btn_approve",
        vec![("comment", Value::from("同意，注意工作交接"))],
    )
    .await?;
    show_answer(sim, &review, &decided)?;

    say(format!(
        "── {}'s chat: … waiting for the card-updater to update the card and tell them ──",
        requester.name
    ));
    let card = wait_for("请假通过 on the requester's card", || {
        sim.card_text(&card_message)
            .filter(|text| text.contains(LEAVE_APPROVED))
    })
    .await?;
    say(boxed(&card));
    let told = wait_for("the text to the requester", || {
        sim.messages(&requester.p2p_chat_id)
            .into_iter()
            .rev()
            .find(|m| from_bot(m) && m.msg_type == "text" && message_text(m).contains("申请"))
    })
    .await?;
    say(format!("  cardbot: {}", message_text(&told)));
    say(format!(
        "── demo done: {} approved, every card shows {LEAVE_APPROVED} ──",
        approver.name
    ));
    Ok(card_message)
}

/// The tutorial's flow: a click on 请假, approved by the simulated approver.
async fn play_tutorial(sim: &Simulator, event_url: &str, card_url: &str) -> Result<String, String> {
    let user = sim.config().user_name.clone();
    let card_message = ask(sim, event_url).await?;
    let card = sim
        .card(&card_message)
        .ok_or_else(|| format!("the simulator has no card for {card_message}"))?;
    let value = button_value(&card.card, LEAVE_BUTTON)
        .ok_or_else(|| format!("the card has no [{LEAVE_BUTTON}] button"))?;
    say(format!("  {user} clicks [{LEAVE_BUTTON}]"));
    let click = sim
        .click_card(card_url, &card_message, value)
        .await
        .map_err(|e| e.to_string())?;
    say(format!(
        "    (card.action.trigger, encrypted and signed → card-action: {} in {} ms)",
        click
            .delivery
            .status
            .map(|s| format!("HTTP {s}"))
            .or(click.delivery.error.clone())
            .unwrap_or_default(),
        click.delivery.elapsed_ms
    ));
    if let Some(code) = click.client_error {
        return Err(format!(
            "the Feishu client shows error {code} for the click"
        ));
    }
    if let Some(toast) = click
        .toast
        .as_ref()
        .and_then(|t| t.get("content"))
        .and_then(Value::as_str)
    {
        say(format!("  toast: {toast}"));
    }
    let mut last = sim.card_text(&card_message).unwrap_or_default();
    if click.card_updated {
        say("  the card, updated by the callback's answer:");
        say(boxed(&last));
    }

    // The delayed update: a job, the stream (or the sweep), the updater, Feishu's API.
    say("  … waiting for the card-updater to deliver the delayed update");
    let started = Instant::now();
    loop {
        if let Some(snapshot) = sim.card(&card_message) {
            if snapshot.text != last {
                let via = snapshot
                    .history
                    .last()
                    .map(|r| r.via.clone())
                    .unwrap_or_default();
                say(format!(
                    "  the card, updated after {:.1} s via {via}:",
                    started.elapsed().as_secs_f64()
                ));
                say(boxed(&snapshot.text));
                last = snapshot.text;
            }
        }
        if last.contains(LEAVE_APPROVED) {
            say(format!("── demo done: the card shows {LEAVE_APPROVED} ──"));
            return Ok(card_message);
        }
        if started.elapsed() > APPROVAL_TIMEOUT {
            return Err(format!(
                "the card did not show {LEAVE_APPROVED} within {APPROVAL_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_callback_value_of_a_2_0_button() {
        let card = json!({"schema": "2.0", "body": {"elements": [
            {"tag": "column_set", "columns": [
                {"tag": "column", "elements": [{"tag": "button", "text": {"tag": "plain_text", "content": "请假"},
                  "behaviors": [{"type": "callback", "value": {"type": "leave"}}]}]},
                {"tag": "column", "elements": [{"tag": "button", "text": {"tag": "plain_text", "content": "加班"},
                  "behaviors": [{"type": "callback", "value": {"type": "overtime"}}]}]}
            ]}
        ]}});
        assert_eq!(button_value(&card, "请假"), Some(json!({"type": "leave"})));
        assert_eq!(
            button_value(&card, "加班"),
            Some(json!({"type": "overtime"}))
        );
        assert_eq!(button_value(&card, "出差"), None);
    }

    #[test]
    fn finds_the_value_of_a_1_0_button() {
        let card = json!({"elements": [{"tag": "action", "actions": [
            {"tag": "button", "text": {"tag": "plain_text", "content": "请假"}, "value": {"type": "leave"}}
        ]}]});
        assert_eq!(button_value(&card, "请假"), Some(json!({"type": "leave"})));
    }
}
