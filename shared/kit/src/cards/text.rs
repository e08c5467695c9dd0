//! The one rule for anything user- or request-supplied that reaches a card or a message: Feishu
//! ids are checked against their formats before they become an `<at>` tag, and text is stripped
//! of control characters, capped in length, and escaped when it sits inside markdown.
//!
//! Feishu's card markdown reads `<at>`, `<font>`, `<text_tag>`, `<link>` tags and markdown marks
//! (`**`, `[]()`, `~~`, …). How it escapes them is not in `../shared/feishu/` (unconfirmed), so
//! [`escape_markdown`] takes the path that is safe either way: every character markdown or a tag
//! could use becomes an HTML numeric entity (`<` → `&#60;`). Where Feishu decodes entities the
//! reader sees the character; where it does not, the reader sees the entity, and in neither case
//! can the text open a tag or a mark. Free text that needs no formatting goes in `plain_text`,
//! which Feishu never parses ([`plain`]).

/// User text shown on a card is cut to this many characters (with `…`), so a card of several
/// such fields stays far below the 30 KB limit (`MAX_CARD_BYTES`).
pub const MAX_USER_TEXT_CHARS: usize = 500;

/// The longest id part after the prefix we accept; Feishu's are 32 hex characters.
const MAX_ID_CHARS: usize = 64;

/// The kinds of Feishu id that may appear on a card, by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeishuId {
    /// `ou_…`: a user in this app.
    OpenId,
    /// `on_…`: a user across the developer's apps.
    UnionId,
    /// `oc_…`: a chat.
    ChatId,
    /// `om_…`: a message.
    MessageId,
}

impl FeishuId {
    fn prefix(self) -> &'static str {
        match self {
            Self::OpenId => "ou_",
            Self::UnionId => "on_",
            Self::ChatId => "oc_",
            Self::MessageId => "om_",
        }
    }

    /// Whether `id` has this kind's shape: the prefix, then 1 to 64 ASCII letters and digits.
    pub fn is_valid(self, id: &str) -> bool {
        id.strip_prefix(self.prefix()).is_some_and(|rest| {
            (1..=MAX_ID_CHARS).contains(&rest.len())
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    }
}

/// `<at id=ou_…></at>` for a well-formed open_id; `None` for anything else (`all`, which would
/// mention everyone, markup, an oversized id).
pub fn mention(open_id: &str) -> Option<String> {
    FeishuId::OpenId
        .is_valid(open_id)
        .then(|| format!("<at id={open_id}></at>"))
}

/// `text` without control characters (newlines and tabs kept as a space or newline), cut to
/// `max_chars` characters with a trailing `…` when longer. For `plain_text` and message text.
pub fn plain(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut count = 0;
    for c in text.chars() {
        let c = match c {
            '\n' => '\n',
            '\t' => ' ',
            c if c.is_control() || is_invisible_format(c) => continue,
            c => c,
        };
        if count == max_chars {
            out.pop();
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// [`plain`] for a text message (`msg_type: text`), which reads `<at user_id="…"></at>` tags,
/// style tags and `[text](url)` links in its content: `<`, `>`, `[` and `]` become their
/// full-width forms (＜ ＞ ［ ］), so the text reads as written and can open no tag, mention
/// nobody and hide no link target. Whether text messages decode entities is not documented
/// (`../shared/feishu/`), so entities, which would show raw, are not used.
pub fn message_text(text: &str, max_chars: usize) -> String {
    plain(text, max_chars)
        .chars()
        .map(|c| match c {
            '<' => '＜',
            '>' => '＞',
            '[' => '［',
            ']' => '］',
            c => c,
        })
        .collect()
}

/// Bidirectional overrides and zero-width characters that would let text disguise itself.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// [`plain`], then every character with a meaning in card markdown or its tags as an HTML
/// numeric entity, so the text shows as written and never opens a tag, a link or a mark.
pub fn escape_markdown(text: &str, max_chars: usize) -> String {
    let capped = plain(text, max_chars);
    let mut out = String::with_capacity(capped.len() + 16);
    for c in capped.chars() {
        match c {
            '&' | '<' | '>' | '"' | '\'' | '*' | '_' | '~' | '`' | '[' | ']' | '(' | ')' | '#'
            | '+' | '-' | '|' | '!' | '\\' | '$' | '{' | '}' | '=' | ':' => {
                out.push_str("&#");
                out.push_str(&u32::from(c).to_string());
                out.push(';');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_are_checked_against_their_formats() {
        assert!(FeishuId::OpenId.is_valid("ou_84aad35d084aa403a838cf73ee18467"));
        assert!(FeishuId::ChatId.is_valid("oc_5ad11d72b830411d72b836c20"));
        assert!(FeishuId::MessageId.is_valid("om_dc13264520392913993dd051dba21dcf"));
        assert!(FeishuId::UnionId.is_valid("on_94a1ee5551019f18cd73d9f111898cf2"));
        for bad in [
            "all",
            "ou_",
            "ou_all ",
            "oc_84aad35d",
            "ou_x></at><font color='red'>x</font>",
            "ou_3c14f3a59eaf2825dbe25359f15*****",
            "OU_84aad35d",
        ] {
            assert!(!FeishuId::OpenId.is_valid(bad), "{bad}");
        }
        assert!(!FeishuId::OpenId.is_valid(&format!("ou_{}", "a".repeat(65))));
        assert!(FeishuId::OpenId.is_valid(&format!("ou_{}", "a".repeat(64))));
    }

    #[test]
    fn only_well_formed_open_ids_are_mentioned() {
        assert_eq!(
            mention("ou_84aad35d084aa403a838cf73ee18467").as_deref(),
            Some("<at id=ou_84aad35d084aa403a838cf73ee18467></at>")
        );
        assert_eq!(mention("all"), None);
        assert_eq!(mention("ou_x></at><font color='red'>x</font>"), None);
        assert_eq!(mention(&"ou_1".repeat(10_000)), None);
    }

    #[test]
    fn plain_text_is_capped_and_loses_control_characters() {
        assert_eq!(plain("家中有事\u{0}\u{7}\t出差", 100), "家中有事 出差");
        assert_eq!(plain("abcdef", 4), "abc…");
        assert_eq!(plain("abcd", 4), "abcd");
        assert_eq!(plain("a\u{202E}b\u{200B}c\nd", 10), "abc\nd");
    }

    #[test]
    fn markdown_marks_and_tags_become_entities() {
        assert_eq!(
            escape_markdown("</at><font color='red'>x</font>", 100),
            "&#60;/at&#62;&#60;font color&#61;&#39;red&#39;&#62;x&#60;/font&#62;"
        );
        assert_eq!(
            escape_markdown("**bold** [x](http://e.com)", 100),
            "&#42;&#42;bold&#42;&#42; &#91;x&#93;&#40;http&#58;//e.com&#41;"
        );
        assert_eq!(escape_markdown("&#60;", 100), "&#38;&#35;60;");
    }

    #[test]
    fn message_text_opens_no_mention_and_hides_no_link() {
        let out = message_text("<at user_id=\"all\"></at>[x](https://evil.example)", 300);
        assert_eq!(
            out,
            "＜at user_id=\"all\"＞＜/at＞［x］(https://evil.example)"
        );
        assert_eq!(message_text("同意，辛苦了", 300), "同意，辛苦了");
    }

    proptest! {
        #[test]
        fn message_text_never_holds_a_tag_or_a_link(text in any::<String>(), max in 1usize..400) {
            let out = message_text(&text, max);
            for forbidden in ['<', '>', '[', ']'] {
                prop_assert!(!out.contains(forbidden), "{forbidden} in {out:?}");
            }
        }

        #[test]
        fn escaped_text_never_holds_a_tag_or_a_mark(text in any::<String>(), max in 1usize..600) {
            let out = escape_markdown(&text, max);
            for forbidden in ['<', '>', '*', '[', ']', '(', ')', '`', '~', '\\', '"', '\''] {
                prop_assert!(!out.contains(forbidden), "{forbidden} in {out:?}");
            }
            prop_assert!(out.chars().all(|c| c == '\n' || !c.is_control()));
            prop_assert!(plain(&text, max).chars().count() <= max);
        }
    }
}
