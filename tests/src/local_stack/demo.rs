//! The demo conversation `make run` plays through the Feishu simulator: `审批`, the card, a click on
//! 请假, and the card turning 请假通过 once the updater has delivered the delayed update.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::simulator::{ChatKind, ChatMessage, Sender, Simulator};

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

/// Plays the conversation; `Ok` with the card's message id once the card shows 请假通过.
pub async fn play(sim: &Simulator, event_url: &str, card_url: &str) -> Result<String, String> {
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
