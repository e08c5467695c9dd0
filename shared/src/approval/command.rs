//! What a user's text message asks for, and the replies to it.

use serde::{Deserialize, Serialize};

use super::views::{pending_card, APPROVAL_REPLY_TEXT, HELP_TEXT};
use crate::cards::Card;

/// What a user's text message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `审批` / `approval`: reply with text and the approval card.
    Approval,
    /// `帮助` / `help`: the help text.
    Help,
    /// `我的申请` / `my requests`: the requester's last 10 requests with their status.
    MyRequests,
    /// `待我审批` / `pending`: the requests waiting for this approver, each card linked.
    Pending,
    /// Anything else: also the help text.
    Unknown,
}

/// What the bot sends back for a command, in order, as replies to the user's message.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandReply {
    /// A text, then the approval card.
    TextAndApprovalCard { text: &'static str, card: Box<Card> },
    /// Only a text.
    Text(&'static str),
    /// A list read from the table ([`Command::MyRequests`], [`Command::Pending`]).
    List,
}

impl Command {
    /// The reply; the approval card offers `catalog`'s current request types.
    pub fn reply(self, catalog: &super::definition::Catalog) -> CommandReply {
        match self {
            Self::Approval => CommandReply::TextAndApprovalCard {
                text: APPROVAL_REPLY_TEXT,
                card: Box::new(pending_card(catalog)),
            },
            Self::Help | Self::Unknown => CommandReply::Text(HELP_TEXT),
            Self::MyRequests | Self::Pending => CommandReply::List,
        }
    }
}

/// Full-width ASCII (U+FF01–U+FF5E) and the ideographic space become their half-width forms.
fn to_half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Removes Feishu's mention placeholders (`@_user_1`, `@_all`) from a text message.
fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let placeholder = if let Some(after) = tail.strip_prefix("@_user_") {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0).then_some("@_user_".len() + digits)
        } else if tail.starts_with("@_all") {
            Some("@_all".len())
        } else {
            None
        };
        match placeholder {
            Some(len) => {
                out.push(' ');
                rest = &tail[len..];
            }
            None => {
                out.push('@');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text as the router compares it: half-width, mentions removed, trimmed, lower case,
/// inner whitespace collapsed.
pub fn normalize_text(raw: &str) -> String {
    let half: String = raw.chars().map(to_half_width).collect();
    let without_mentions = strip_mentions(&half);
    without_mentions
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Routes a text message (the `text` of its `content`).
pub fn parse_command(raw: &str) -> Command {
    match normalize_text(raw).as_str() {
        "审批" | "approval" => Command::Approval,
        "帮助" | "help" => Command::Help,
        "我的申请" | "my requests" => Command::MyRequests,
        "待我审批" | "pending" => Command::Pending,
        _ => Command::Unknown,
    }
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised_in_every_spelling() {
        for text in [
            "审批",
            " 审批 ",
            "\u{3000}审批\u{3000}",
            "@_user_1 审批",
            "@_user_1审批",
            "审批 @_user_2",
            "approval",
            "APPROVAL",
            "Approval",
            "ＡＰＰＲＯＶＡＬ",
            "ａｐｐｒｏｖａｌ",
            "@_user_12 approval\n",
            "@_all 审批",
        ] {
            assert_eq!(parse_command(text), Command::Approval, "{text:?}");
        }
        for text in ["帮助", "help", "HELP", "ｈｅｌｐ", " @_user_1 帮助 "] {
            assert_eq!(parse_command(text), Command::Help, "{text:?}");
        }
        for text in ["我的申请", "My Requests", "@_user_1 my  requests"] {
            assert_eq!(parse_command(text), Command::MyRequests, "{text:?}");
        }
        for text in ["待我审批", "pending", "PENDING", "@_user_1 待我审批"] {
            assert_eq!(parse_command(text), Command::Pending, "{text:?}");
        }
        for text in [
            "hello",
            "",
            "审批审批",
            "审 批",
            "@_user_1",
            "approve",
            "@_user_ 审批",
            "请假",
        ] {
            assert_eq!(parse_command(text), Command::Unknown, "{text:?}");
        }
    }

    #[test]
    fn normalisation_keeps_real_at_signs_and_collapses_spaces() {
        assert_eq!(normalize_text("mail a@b.c"), "mail a@b.c");
        assert_eq!(normalize_text("Ａ　Ｂ！"), "a b!");
        assert_eq!(normalize_text("x@_user_1y"), "x y");
        assert_eq!(normalize_text("@"), "@");
    }

    #[test]
    fn replies_for_each_command() {
        let CommandReply::TextAndApprovalCard { text, card } =
            Command::Approval.reply(&super::super::definition::Catalog::builtin())
        else {
            panic!()
        };
        assert_eq!(text, APPROVAL_REPLY_TEXT);
        assert_eq!(
            *card,
            pending_card(&super::super::definition::Catalog::builtin())
        );
        assert_eq!(
            Command::Help.reply(&super::super::definition::Catalog::builtin()),
            CommandReply::Text(HELP_TEXT)
        );
        assert_eq!(
            Command::Unknown.reply(&super::super::definition::Catalog::builtin()),
            CommandReply::Text(HELP_TEXT)
        );
    }
}
