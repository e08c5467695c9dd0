//! How a card is sent, and so how it is updated later: a CardKit card entity or a plain message.

/// How a bot's cards are sent, and so how they are updated later (`CARD_DELIVERY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum CardDelivery {
    /// A CardKit card entity sent by `card_id` (element-level updates, strictly increasing `sequence`).
    #[default]
    Entity,
    /// A plain interactive message carrying the card JSON (updated with message PATCH).
    Message,
}

impl CardDelivery {
    /// `CARD_DELIVERY` and `CardState.delivery`: `entity` or `message`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entity => "entity",
            Self::Message => "message",
        }
    }

    /// The one parser (`CARD_DELIVERY`, stored items, job payloads), case- and space-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "entity" => Some(Self::Entity),
            "message" => Some(Self::Message),
            _ => None,
        }
    }
}

impl From<CardDelivery> for &'static str {
    fn from(mode: CardDelivery) -> Self {
        mode.as_str()
    }
}

impl TryFrom<String> for CardDelivery {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown card delivery {s:?}"))
    }
}
