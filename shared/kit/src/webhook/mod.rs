//! Raw Feishu request → verified, decrypted, typed inbound message.
//!
//! [`verify`] is the only way to get an [`Inbound`]: holding one proves the body passed the size
//! limit, the signature (SHA-256 with the Encrypt Key, or SHA-1 for legacy card callbacks), the
//! replay window and the Verification Token. In unencrypted mode (no Encrypt Key, an opt-in) a
//! plain request proves only the token and a timestamp inside the window.

mod click;
mod crypto;
mod wire;

use std::borrow::Cow;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::config::WebhookConfig;
use crate::store::EpochMillis;

pub use click::{CallbackStyle, CardClick};
pub use crypto::{decrypt, encrypt, signature_sha1_legacy, signature_sha256, DecryptError};
pub use wire::*;

/// `X-Lark-Request-Timestamp`: epoch seconds of the request, checked against the replay window.
pub const HEADER_TIMESTAMP: &str = "x-lark-request-timestamp";
/// `X-Lark-Request-Nonce`: the nonce of the signed material.
pub const HEADER_NONCE: &str = "x-lark-request-nonce";
/// `X-Lark-Signature`: hex SHA-256 (SHA-1 for legacy card callbacks) of timestamp, nonce, key
/// and body.
pub const HEADER_SIGNATURE: &str = "x-lark-signature";
/// `X-Refresh-Token` of a legacy card callback: the same on a re-delivery of one click; unsigned,
/// so never a dedup key.
pub const HEADER_REFRESH_TOKEN: &str = "x-refresh-token";

/// How far a signed timestamp may run ahead of our clock (clock skew), in ms.
const MAX_FUTURE_SKEW_MS: i128 = 5 * 60 * 1000;

/// A verified request.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// `url_verification`: answer with [`challenge_response_body`] within 1 s.
    Challenge(Challenge),
    /// `im.message.receive_v1`: a message the bot received.
    MessageReceive(Box<MessageReceive>),
    /// `card.action.trigger`: a card click (schema 2.0 callback).
    CardAction(Box<CardActionTrigger>),
    /// A card click from the legacy card request URL (`card.action.trigger_v1`).
    LegacyCardAction(Box<LegacyCardAction>),
    /// `im.chat.access_event.bot_p2p_chat_entered_v1`: a user opened the p2p chat with the bot.
    BotP2pChatEntered(Box<BotP2pChatEntered>),
    /// `application.bot.menu_v6`: a user clicked a bot menu item.
    BotMenu(Box<BotMenu>),
    /// Any other event, passed through.
    Event(Box<OtherEvent>),
}

/// `header.event_type` of [`Inbound::BotP2pChatEntered`].
pub const BOT_P2P_CHAT_ENTERED: &str = "im.chat.access_event.bot_p2p_chat_entered_v1";
/// `header.event_type` of [`Inbound::BotMenu`].
pub const BOT_MENU: &str = "application.bot.menu_v6";

/// A `url_verification` request, which the URL must answer with its `challenge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `challenge`: the value to echo back.
    pub challenge: String,
}

impl Challenge {
    /// The answer, `{"challenge":"…"}` ([`challenge_response_body`]).
    pub fn response_body(&self) -> String {
        challenge_response_body(&self.challenge)
    }
}

/// The plain JSON answer to a challenge, `{"challenge":"…"}`, even when the request was encrypted.
pub fn challenge_response_body(challenge: &str) -> String {
    serde_json::json!({ "challenge": challenge }).to_string()
}

/// The envelope an [`OtherEvent`] came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSchema {
    /// Legacy envelope: `uuid`, `token`, `type: event_callback`, event type in `event.type`.
    V1,
    /// `schema` + `header` envelope.
    V2,
}

/// An event this crate has no type for.
#[derive(Debug, Clone)]
pub struct OtherEvent {
    /// Its envelope.
    pub schema: EventSchema,
    /// `header.event_type` (2.0) or `event.type` (1.0).
    pub event_type: String,
    /// `header.event_id` (2.0) or `uuid` (1.0).
    pub event_id: String,
    /// The whole envelope, with the Verification Token removed.
    pub raw: Value,
}

impl Inbound {
    /// What identifies a re-delivery of this request: `message_id` for messages (Feishu says not to
    /// rely on `event_id` there), `event_id`/`uuid` for other events and callbacks, the hashed
    /// update token for legacy card callbacks (the one rule of [`CardClick::dedup_key`]; the
    /// unsigned `X-Refresh-Token` header is not used). `None` for challenges.
    pub fn dedup_id(&self) -> Option<Cow<'_, str>> {
        match self {
            Inbound::Challenge(_) => None,
            Inbound::MessageReceive(m) => Some(Cow::Borrowed(&m.event.message.message_id)),
            Inbound::CardAction(c) => Some(Cow::Borrowed(click::trigger_dedup_key(c))),
            Inbound::LegacyCardAction(l) => Some(Cow::Owned(click::legacy_dedup_key(&l.token))),
            Inbound::BotP2pChatEntered(e) => Some(Cow::Borrowed(&e.header.event_id)),
            Inbound::BotMenu(e) => Some(Cow::Borrowed(&e.header.event_id)),
            Inbound::Event(e) => Some(Cow::Borrowed(&e.event_id)),
        }
    }

    /// The `tenant_key` of the tenant the request is for: the app's tenant, whose token serves it
    /// (store-apps: `header.tenant_key` of 2.0 events and `card.action.trigger`, `event.tenant_key`
    /// of 1.0 events, the top-level `tenant_key` of a legacy callback; never the clicker's
    /// `operator.tenant_key`, which differs for an external user). `None` for a challenge or a
    /// request without one.
    pub fn tenant_key(&self) -> Option<&str> {
        let key = match self {
            Inbound::Challenge(_) => None,
            Inbound::MessageReceive(m) => m.header.tenant_key.as_deref(),
            Inbound::CardAction(c) => c.header.tenant_key.as_deref(),
            Inbound::LegacyCardAction(l) => l.tenant_key.as_deref(),
            Inbound::BotP2pChatEntered(e) => e.header.tenant_key.as_deref(),
            Inbound::BotMenu(e) => e.header.tenant_key.as_deref(),
            Inbound::Event(e) => {
                let at = match e.schema {
                    EventSchema::V1 => "/event/tenant_key",
                    EventSchema::V2 => "/header/tenant_key",
                };
                e.raw.pointer(at).and_then(Value::as_str)
            }
        };
        key.filter(|k| !k.is_empty())
    }

    /// The click a card callback carries; `None` for anything else.
    pub fn card_click(&self) -> Option<CardClick> {
        match self {
            Inbound::CardAction(trigger) => Some(CardClick::from_trigger(trigger)),
            Inbound::LegacyCardAction(legacy) => Some(CardClick::from_legacy(legacy)),
            _ => None,
        }
    }
}

/// Why a request was rejected; [`WebhookError::status`] is the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The body is over [`WebhookConfig::max_body_bytes`] (413).
    #[error("body of {len} bytes exceeds the limit of {limit}")]
    BodyTooLarge {
        /// The body's size, in bytes.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// `isBase64Encoded` is set but the body is not strict base64 (400).
    #[error("body is not strict base64")]
    BodyBase64,
    /// The body, or the decrypted body, is not a JSON object (400).
    #[error("body is not a JSON object")]
    MalformedJson,
    /// A required field is absent or of the wrong type; names the field (400).
    #[error("missing or mistyped field {0}")]
    MissingField(&'static str),
    /// A typed event or callback that does not parse into its type (400).
    #[error("malformed {event_type}: {detail}")]
    MalformedEvent {
        /// Which one, e.g. `card.action.trigger`.
        event_type: &'static str,
        /// serde's message, cut before any quoted request value.
        detail: String,
    },
    /// Neither a challenge, an event nor a card callback (400).
    #[error("body shape is neither a challenge, an event nor a card callback")]
    UnknownBodyShape,
    /// An `encrypt` body, but no Encrypt Key is configured (400).
    #[error("encrypted body but no Encrypt Key is configured")]
    EncryptedBodyWithoutKey,
    /// A plain body (not a challenge) although an Encrypt Key is configured (400).
    #[error("plain body but an Encrypt Key is configured")]
    PlainBodyWithKey,
    /// The `encrypt` value did not decrypt (400).
    #[error("decrypt failed: {0}")]
    Decrypt(#[from] DecryptError),
    /// A required header (timestamp, nonce or signature) is missing or not text; names it (401).
    #[error("missing or unreadable header {0}")]
    MissingHeader(&'static str),
    /// `X-Lark-Request-Timestamp` is not epoch seconds (401).
    #[error("timestamp header is not epoch seconds")]
    InvalidTimestamp,
    /// The timestamp is older than the replay window, or more than 5 minutes ahead (401).
    #[error("timestamp outside the replay window")]
    StaleTimestamp,
    /// `X-Lark-Signature` does not match the request (401).
    #[error("signature mismatch")]
    SignatureMismatch,
    /// The request's Verification Token is not the configured one (401).
    #[error("verification token mismatch")]
    TokenMismatch,
}

impl WebhookError {
    /// The HTTP status to answer: 413 for a too-large body, 400 for a malformed one, 401 for a
    /// failed check.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            WebhookError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::BodyBase64
            | WebhookError::MalformedJson
            | WebhookError::MissingField(_)
            | WebhookError::MalformedEvent { .. }
            | WebhookError::UnknownBodyShape
            | WebhookError::EncryptedBodyWithoutKey
            | WebhookError::PlainBodyWithKey
            | WebhookError::Decrypt(_) => StatusCode::BAD_REQUEST,
            WebhookError::MissingHeader(_)
            | WebhookError::InvalidTimestamp
            | WebhookError::StaleTimestamp
            | WebhookError::SignatureMismatch
            | WebhookError::TokenMismatch => StatusCode::UNAUTHORIZED,
        }
    }

    /// A short, fixed reason for the response body and logs; never holds request data.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::BodyTooLarge { .. } => "body too large",
            WebhookError::BodyBase64 => "bad base64 body",
            WebhookError::MalformedJson => "malformed json",
            WebhookError::MissingField(_) => "missing field",
            WebhookError::MalformedEvent { .. } => "malformed event",
            WebhookError::UnknownBodyShape => "unknown body shape",
            WebhookError::EncryptedBodyWithoutKey => "encrypted body without encrypt key",
            WebhookError::PlainBodyWithKey => "plain body with encrypt key",
            WebhookError::Decrypt(DecryptError::Base64) => "bad base64",
            WebhookError::Decrypt(DecryptError::CiphertextLength) => "bad ciphertext length",
            WebhookError::Decrypt(DecryptError::Padding) => "bad padding",
            WebhookError::Decrypt(DecryptError::Utf8) => "plaintext not utf-8",
            WebhookError::MissingHeader(HEADER_TIMESTAMP) => "missing timestamp header",
            WebhookError::MissingHeader(_) => "missing signature header",
            WebhookError::InvalidTimestamp => "invalid timestamp",
            WebhookError::StaleTimestamp => "stale timestamp",
            WebhookError::SignatureMismatch => "signature mismatch",
            WebhookError::TokenMismatch => "token mismatch",
        }
    }
}

/// The raw body bytes of a Lambda HTTP event whose body may have arrived base64-encoded
/// (`isBase64Encoded`).
pub fn decode_body(body: &[u8], is_base64: bool) -> Result<Cow<'_, [u8]>, WebhookError> {
    if !is_base64 {
        return Ok(Cow::Borrowed(body));
    }
    STANDARD
        .decode(body)
        .map(Cow::Owned)
        .map_err(|_| WebhookError::BodyBase64)
}

/// Verifies one request to the event or card-callback URL and types it.
///
/// `body` must be the exact bytes received (see [`decode_body`]); `now` is the current time.
pub fn verify(
    config: &WebhookConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: EpochMillis,
) -> Result<Inbound, WebhookError> {
    if body.len() > config.max_body_bytes {
        return Err(WebhookError::BodyTooLarge {
            len: body.len(),
            limit: config.max_body_bytes,
        });
    }
    // The hot path (every encrypted request) reads `encrypt` without building the outer object.
    if let Some(encrypt) = peek_encrypt(body) {
        return verify_encrypted(config, headers, body, &encrypt, now);
    }
    let outer = parse_object(body)?;
    if let Some(encrypt) = outer.get("encrypt") {
        config
            .encrypt_key
            .as_ref()
            .ok_or(WebhookError::EncryptedBodyWithoutKey)?;
        let encrypt = encrypt
            .as_str()
            .ok_or(WebhookError::MissingField("encrypt"))?;
        return verify_encrypted(config, headers, body, encrypt, now);
    }

    if is_legacy_card_action(&outer) {
        let signature =
            signature_headers(headers)?.ok_or(WebhookError::MissingHeader(HEADER_SIGNATURE))?;
        check_timestamp(signature.timestamp, config, now)?;
        let expected = signature_sha1_legacy(
            signature.timestamp,
            signature.nonce,
            &config.verification_token,
            body,
        );
        if !crypto::constant_time_eq(expected.as_bytes(), signature.signature) {
            return Err(WebhookError::SignatureMismatch);
        }
        let mut action: LegacyCardAction = typed(Value::Object(outer), "legacy card callback")?;
        action.refresh_token = header_str(headers, HEADER_REFRESH_TOKEN).map(str::to_owned);
        return Ok(Inbound::LegacyCardAction(Box::new(action)));
    }

    // The legacy card URL's challenge is never encrypted, so a plain challenge stays valid with a
    // key; the Verification Token still guards it.
    if is_challenge(&outer) {
        return answer_challenge(config, &outer);
    }
    if config.encrypt_key.is_some() {
        return Err(WebhookError::PlainBodyWithKey);
    }
    // Unencrypted mode (an explicit opt-in): nothing is signed, so at least every request must
    // carry a timestamp inside the replay window; a replay of a request older than the window is
    // refused even after its dedup record has expired.
    if headers.contains_key(HEADER_TIMESTAMP) {
        let timestamp =
            header_str(headers, HEADER_TIMESTAMP).ok_or(WebhookError::InvalidTimestamp)?;
        check_timestamp(timestamp, config, now)?;
    } else {
        return Err(WebhookError::MissingHeader(HEADER_TIMESTAMP));
    }
    dispatch(config, outer)
}

/// An `{"encrypt": …}` body: signed with the Encrypt Key (only the challenge may come unsigned).
fn verify_encrypted(
    config: &WebhookConfig,
    headers: &HeaderMap,
    body: &[u8],
    encrypt: &str,
    now: EpochMillis,
) -> Result<Inbound, WebhookError> {
    let key = config
        .encrypt_key
        .as_ref()
        .ok_or(WebhookError::EncryptedBodyWithoutKey)?;
    let Some(signature) = signature_headers(headers)? else {
        // Only the challenge comes unsigned. Every other outcome gives the same error, so an
        // unsigned body can never be used as a padding oracle.
        let challenge = decrypt(key, encrypt)
            .ok()
            .and_then(|plain| parse_object(plain.as_bytes()).ok())
            .filter(is_challenge)
            .ok_or(WebhookError::MissingHeader(HEADER_SIGNATURE))?;
        return answer_challenge(config, &challenge);
    };
    check_timestamp(signature.timestamp, config, now)?;
    let expected = crypto::digest_sha256(signature.timestamp, signature.nonce, key, body);
    if !crypto::signature_matches(signature.signature, &expected) {
        return Err(WebhookError::SignatureMismatch);
    }
    let plain = decrypt(key, encrypt)?;
    if let Some(inbound) = dispatch_typed(config, &plain)? {
        return Ok(inbound);
    }
    let inner = parse_object(plain.as_bytes())?;
    if inner.contains_key("encrypt") {
        return Err(WebhookError::UnknownBodyShape);
    }
    dispatch(config, inner)
}

/// The outer body's `encrypt` string, read without building the object; `None` for anything else
/// (no `encrypt`, not a string, not JSON), which the general path then answers.
///
/// Feishu sends exactly `{"encrypt":"<base64>"}`; that shape is read by a byte scan (base64 has no
/// `"` or `\`, so the first `"` ends the value). Any other spelling (whitespace, more keys, an
/// escape) goes through serde.
fn peek_encrypt(body: &[u8]) -> Option<Cow<'_, str>> {
    let value = body
        .strip_prefix(br#"{"encrypt":""#)
        .and_then(|rest| rest.strip_suffix(br#""}"#))
        .filter(|v| v.is_ascii() && memchr::memchr2(b'"', b'\\', v).is_none());
    if let Some(value) = value {
        // ASCII only, so always UTF-8; anything else is left to serde's checks below.
        return std::str::from_utf8(value).ok().map(Cow::Borrowed);
    }
    #[derive(serde::Deserialize)]
    struct Outer<'a> {
        #[serde(borrow)]
        encrypt: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Outer>(body).ok()?.encrypt
}

/// The event a v2 envelope carries, typed by its header's `event_type` while it is read.
enum TypedEvent {
    Message(MessageReceiveEvent),
    Card(CardActionEvent),
}

/// A decrypted v2 envelope read in one pass. Feishu sends `schema`, `header`, `event` in that
/// order, so the header's `event_type` is known when the event starts and the event is parsed
/// straight into its type. Anything else (the event before the header, another event type, a
/// repeated key, an `encrypt` or `type` key, a field of the wrong type) is an error here, and the
/// caller hands the envelope to the general path.
struct OnePass {
    schema: Option<String>,
    header: Option<EventHeader>,
    event: Option<TypedEvent>,
}

impl<'de> serde::Deserialize<'de> for OnePass {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, IgnoredAny, MapAccess, Visitor};

        struct Envelope;
        impl<'de> Visitor<'de> for Envelope {
            type Value = OnePass;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a v2 event envelope")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OnePass, A::Error> {
                let mut out = OnePass {
                    schema: None,
                    header: None,
                    event: None,
                };
                while let Some(key) = map.next_key::<&'de str>()? {
                    match key {
                        "schema" if out.schema.is_none() => out.schema = Some(map.next_value()?),
                        "header" if out.header.is_none() => out.header = Some(map.next_value()?),
                        "event" if out.event.is_none() => {
                            let event_type = out.header.as_ref().map(|h| h.event_type.as_str());
                            out.event = Some(match event_type {
                                Some("im.message.receive_v1") => {
                                    TypedEvent::Message(map.next_value()?)
                                }
                                Some("card.action.trigger") => TypedEvent::Card(map.next_value()?),
                                _ => return Err(A::Error::custom("not a typed event")),
                            });
                        }
                        "schema" | "header" | "event" | "encrypt" | "type" => {
                            return Err(A::Error::custom("not a plain v2 envelope"))
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Envelope)
    }
}

/// The two events the bot acts on, typed straight from the decrypted bytes in one pass.
/// `Ok(None)` hands anything else, or anything unusual, to [`dispatch`], which gives the same
/// answer for every envelope this accepts (the webhook tests compare the two).
fn dispatch_typed(config: &WebhookConfig, plain: &str) -> Result<Option<Inbound>, WebhookError> {
    // From `&str`: the bytes are known UTF-8 (the decrypt checked them once), so serde_json does
    // not check each string again as `from_slice` would.
    let Ok(OnePass {
        schema: Some(schema),
        header: Some(header),
        event: Some(event),
    }) = serde_json::from_str(plain)
    else {
        return Ok(None);
    };
    check_token(config, Some(header.token.expose()), "header.token")?;
    Ok(Some(match event {
        TypedEvent::Message(event) => Inbound::MessageReceive(Box::new(MessageReceive {
            schema,
            header,
            event,
        })),
        TypedEvent::Card(event) => Inbound::CardAction(Box::new(CardActionTrigger {
            schema,
            header,
            event,
        })),
    }))
}

/// A v2 event passed through untyped, without its Verification Token.
fn other_event(event_type: String, event_id: String, envelope: Value) -> Inbound {
    Inbound::Event(Box::new(OtherEvent {
        schema: EventSchema::V2,
        event_type,
        event_id,
        raw: without_token(envelope),
    }))
}

/// Routes a decrypted (or plain, unsigned) envelope, checking its Verification Token first.
fn dispatch(config: &WebhookConfig, envelope: Map<String, Value>) -> Result<Inbound, WebhookError> {
    if is_challenge(&envelope) {
        return answer_challenge(config, &envelope);
    }
    if let Some(header) = envelope.get("header") {
        check_token(
            config,
            header.get("token").and_then(Value::as_str),
            "header.token",
        )?;
        let event_type = str_field(header, "event_type", "header.event_type")?.to_owned();
        let event_id = str_field(header, "event_id", "header.event_id")?.to_owned();
        let envelope = Value::Object(envelope);
        return Ok(match event_type.as_str() {
            "im.message.receive_v1" => {
                Inbound::MessageReceive(Box::new(typed(envelope, "im.message.receive_v1")?))
            }
            "card.action.trigger" => {
                Inbound::CardAction(Box::new(typed(envelope, "card.action.trigger")?))
            }
            // Their ids need scopes and their shapes are the bot's to judge: one that does not
            // parse is passed through untyped (answered 200 and logged by the bot), never a 4xx
            // that Feishu would retry for hours.
            BOT_P2P_CHAT_ENTERED => match serde_json::from_value(envelope.clone()) {
                Ok(entered) => Inbound::BotP2pChatEntered(Box::new(entered)),
                Err(_) => other_event(event_type, event_id, envelope),
            },
            BOT_MENU => match serde_json::from_value(envelope.clone()) {
                Ok(menu) => Inbound::BotMenu(Box::new(menu)),
                Err(_) => other_event(event_type, event_id, envelope),
            },
            _ => Inbound::Event(Box::new(OtherEvent {
                schema: EventSchema::V2,
                event_type,
                event_id,
                raw: without_token(envelope),
            })),
        });
    }
    if envelope.get("type").and_then(Value::as_str) == Some("event_callback")
        || envelope.contains_key("uuid")
    {
        check_token(
            config,
            envelope.get("token").and_then(Value::as_str),
            "token",
        )?;
        let envelope = Value::Object(envelope);
        let event = envelope
            .get("event")
            .ok_or(WebhookError::MissingField("event"))?;
        let event_type = str_field(event, "type", "event.type")?.to_owned();
        let event_id = str_field(&envelope, "uuid", "uuid")?.to_owned();
        return Ok(Inbound::Event(Box::new(OtherEvent {
            schema: EventSchema::V1,
            event_type,
            event_id,
            raw: without_token(envelope),
        })));
    }
    Err(WebhookError::UnknownBodyShape)
}

fn answer_challenge(
    config: &WebhookConfig,
    envelope: &Map<String, Value>,
) -> Result<Inbound, WebhookError> {
    check_token(
        config,
        envelope.get("token").and_then(Value::as_str),
        "token",
    )?;
    let challenge = envelope
        .get("challenge")
        .and_then(Value::as_str)
        .ok_or(WebhookError::MissingField("challenge"))?;
    Ok(Inbound::Challenge(Challenge {
        challenge: challenge.to_owned(),
    }))
}

fn check_token(
    config: &WebhookConfig,
    token: Option<&str>,
    field: &'static str,
) -> Result<(), WebhookError> {
    let token = token.ok_or(WebhookError::MissingField(field))?;
    if crypto::constant_time_eq(
        token.as_bytes(),
        config.verification_token.expose().as_bytes(),
    ) {
        Ok(())
    } else {
        Err(WebhookError::TokenMismatch)
    }
}

struct SignatureHeaders<'a> {
    timestamp: &'a str,
    nonce: &'a str,
    signature: &'a [u8],
}

/// The three signature headers, `None` when the request carries no signature at all.
fn signature_headers(headers: &HeaderMap) -> Result<Option<SignatureHeaders<'_>>, WebhookError> {
    let Some(signature) = headers.get(HEADER_SIGNATURE) else {
        return Ok(None);
    };
    // When a signature is required, its timestamp is too: otherwise the replay window is moot.
    let timestamp = header_str(headers, HEADER_TIMESTAMP)
        .ok_or(WebhookError::MissingHeader(HEADER_TIMESTAMP))?;
    let nonce =
        header_str(headers, HEADER_NONCE).ok_or(WebhookError::MissingHeader(HEADER_NONCE))?;
    Ok(Some(SignatureHeaders {
        timestamp,
        nonce,
        signature: signature.as_bytes(),
    }))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &'static str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `X-Lark-Request-Timestamp` (epoch seconds) must lie within the replay window.
fn check_timestamp(
    timestamp: &str,
    config: &WebhookConfig,
    now: EpochMillis,
) -> Result<(), WebhookError> {
    if timestamp.is_empty()
        || timestamp.len() > 18
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(WebhookError::InvalidTimestamp);
    }
    let sent_ms = timestamp
        .parse::<i128>()
        .map_err(|_| WebhookError::InvalidTimestamp)?
        * 1000;
    let age_ms = i128::from(now) - sent_ms;
    if age_ms > config.replay_window.as_millis() as i128 || -age_ms > MAX_FUTURE_SKEW_MS {
        return Err(WebhookError::StaleTimestamp);
    }
    Ok(())
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, WebhookError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(WebhookError::MalformedJson),
    }
}

fn is_challenge(envelope: &Map<String, Value>) -> bool {
    envelope.get("type").and_then(Value::as_str) == Some("url_verification")
}

/// Legacy card callbacks have no envelope: `open_message_id` and `action` sit at the top level.
fn is_legacy_card_action(body: &Map<String, Value>) -> bool {
    ["schema", "header", "type", "encrypt"]
        .iter()
        .all(|k| !body.contains_key(*k))
        && body.contains_key("open_message_id")
        && body.contains_key("action")
}

fn str_field<'a>(
    value: &'a Value,
    key: &str,
    field: &'static str,
) -> Result<&'a str, WebhookError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or(WebhookError::MissingField(field))
}

fn typed<T: DeserializeOwned>(value: Value, event_type: &'static str) -> Result<T, WebhookError> {
    serde_json::from_value(value).map_err(|e| WebhookError::MalformedEvent {
        event_type,
        // serde quotes offending string values; cut there so no request value reaches a log.
        detail: e
            .to_string()
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Drops the Verification Token from a pass-through envelope so it cannot leak via `Debug`.
fn without_token(mut envelope: Value) -> Value {
    if let Some(map) = envelope.as_object_mut() {
        map.remove("token");
        if let Some(header) = map.get_mut("header").and_then(Value::as_object_mut) {
            header.remove("token");
        }
    }
    envelope
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EncryptKey, VerificationToken};
    use proptest::prelude::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/feishu");

    fn config() -> WebhookConfig {
        WebhookConfig::new(
            VerificationToken::new("cardbot-test-verification-token"),
            Some(EncryptKey::new("cardbot-test-encrypt-key")),
        )
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
    }

    /// What the general path answers for a decrypted body.
    fn general(config: &WebhookConfig, plain: &[u8]) -> Result<Inbound, WebhookError> {
        let inner = parse_object(plain)?;
        if inner.contains_key("encrypt") {
            return Err(WebhookError::UnknownBodyShape);
        }
        dispatch(config, inner)
    }

    /// The typed path, where it answers, answers as the general path does.
    fn assert_agrees(plain: &str) -> bool {
        let config = config();
        let fast = dispatch_typed(&config, plain);
        let slow = general(&config, plain.as_bytes());
        match fast {
            Ok(None) => false,
            Ok(Some(fast)) => {
                let slow = slow.unwrap_or_else(|e| panic!("general path rejects: {e}\n{plain}"));
                assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{plain}");
                true
            }
            Err(fast) => {
                let slow = slow
                    .err()
                    .unwrap_or_else(|| panic!("general path accepts\n{plain}"));
                assert_eq!(fast.to_string(), slow.to_string(), "{plain}");
                true
            }
        }
    }

    /// The four event fixtures, read once for every test and proptest case.
    fn events() -> &'static [String; 4] {
        static EVENTS: std::sync::OnceLock<[String; 4]> = std::sync::OnceLock::new();
        EVENTS.get_or_init(|| {
            [
                "event_im_message_receive_p2p.json",
                "event_im_message_receive_group_mention.json",
                "callback_card_action_trigger_leave.json",
                "callback_card_action_trigger_second_button.json",
            ]
            .map(fixture)
        })
    }

    #[test]
    fn the_typed_path_takes_the_two_events_and_matches_the_general_path() {
        for plain in events() {
            assert!(assert_agrees(plain), "typed path declined {plain}");
            // Keys sorted (`event` before `header`): the general path answers, the same way.
            let sorted = serde_json::to_string(&serde_json::from_str::<Value>(plain).unwrap());
            assert!(!assert_agrees(&sorted.unwrap()));
        }
        // The byte-exact plaintexts of the signed vectors, compact and in Feishu's key order.
        let vectors: Value = serde_json::from_str(&fixture("vectors.json")).unwrap();
        let typed = vectors["request_vectors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| assert_agrees(v["plaintext"].as_str().unwrap()))
            .count();
        assert_eq!(typed, 2, "the 审批 event and the card click");
    }

    #[test]
    fn unusual_envelopes_go_to_the_general_path_or_get_its_answer() {
        let plain = &events()[0];
        let token = "\"token\": \"cardbot-test-verification-token\"";
        let cases = [
            (plain.replacen(token, "\"token\": \"forged\"", 1), true),
            (plain.replacen(token, "\"token\": null", 1), false),
            (plain.replacen(token, "\"token\": 7", 1), false),
            (plain.replacen(token, "\"tokens\": 1", 1), false),
            (plain.replacen("\"event_id\"", "\"event_ids\"", 1), false),
            (
                plain.replacen("\"event_type\"", "\"event_types\"", 1),
                false,
            ),
            (plain.replacen("\"schema\": \"2.0\",", "", 1), false),
            (
                plain.replacen("\"schema\"", "\"encrypt\": null, \"x\"", 1),
                false,
            ),
            (
                plain.replacen("\"schema\"", "\"type\": \"url_verification\", \"x\"", 1),
                false,
            ),
            (
                plain.replacen("\"schema\"", "\"header\": 1, \"x\"", 1),
                false,
            ),
            (
                plain.replacen(token, &format!("{token}, \"token\": \"forged\""), 1),
                false,
            ),
            (
                plain.replacen("\"message_id\"", "\"message_ids\"", 1),
                false,
            ),
            (
                plain.replacen("\"im.message.receive_v1\"", "\"im.chat.disbanded_v1\"", 1),
                false,
            ),
        ];
        for (case, typed) in cases {
            assert_ne!(&case, plain);
            assert_eq!(assert_agrees(&case), typed, "{case}");
        }
    }

    /// What serde reads as the outer `encrypt`, for comparing with the byte scan.
    fn serde_encrypt(body: &[u8]) -> Option<String> {
        serde_json::from_slice::<Value>(body).ok()?["encrypt"]
            .as_str()
            .map(str::to_owned)
    }

    #[test]
    fn the_byte_scan_reads_feishus_body_and_leaves_every_other_spelling_to_serde() {
        let feishu = br#"{"encrypt":"AAEC/+=="}"#;
        assert!(matches!(
            peek_encrypt(feishu),
            Some(Cow::Borrowed("AAEC/+=="))
        ));
        for body in [
            &br#"{"encrypt":"AAEC\/+=="}"#[..],
            br#"{"encrypt": "AAEC"}"#,
            br#"{"encrypt":"AAEC"} "#,
            br#"{"encrypt":"AAEC","x":1}"#,
            br#"{"encrypt":"AAEC"}}"#,
            br#"{"encrypt":"\u0041"}"#,
            br#"{"encrypt":"AA"#,
            br#"{"encrypt":7}"#,
            "{\"encrypt\":\"\u{e9}\"}".as_bytes(),
        ] {
            assert_eq!(
                peek_encrypt(body).map(Cow::into_owned),
                serde_encrypt(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn simd_base64_is_as_strict_as_feishus_standard_padded_alphabet() {
        let key = EncryptKey::new("cardbot-test-encrypt-key");
        let good = crypto::encrypt(&key, [7; 16], "{}");
        assert_eq!(decrypt(&key, &good).as_deref(), Ok("{}"));
        let unpadded = good.trim_end_matches('=');
        assert_ne!(unpadded, good, "the vector must end in padding");
        let url_safe = good.replace('+', "-").replace('/', "_");
        // The last data character before the padding carries unused bits; setting one makes the
        // value non-canonical.
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bad_tail = good.clone();
        let at = good.trim_end_matches('=').len() - 1;
        let value = ALPHABET.find(&good[at..=at]).unwrap() | 1;
        bad_tail.replace_range(at..=at, &ALPHABET[value..=value]);
        assert_ne!(bad_tail, good);
        for bad in [
            unpadded,
            &format!(" {good}"),
            &format!("{good}\n"),
            &bad_tail,
        ] {
            assert_eq!(decrypt(&key, bad), Err(DecryptError::Base64), "{bad}");
        }
        if url_safe != good {
            assert_eq!(decrypt(&key, &url_safe), Err(DecryptError::Base64));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn any_edit_of_an_event_gets_the_same_answer_on_both_paths(
            which in 0usize..4,
            at in any::<prop::sample::Index>(),
            len in 0usize..12,
            insert in "[\"{}:,a-z0-9 ]{0,6}",
        ) {
            let plain = &events()[which];
            let start = at.index(plain.len());
            let end = (start + len).min(plain.len());
            if plain.is_char_boundary(start) && plain.is_char_boundary(end) {
                let edited = format!("{}{insert}{}", &plain[..start], &plain[end..]);
                assert_agrees(&edited);
            }
        }
    }
}
