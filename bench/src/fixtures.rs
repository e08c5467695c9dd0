//! Signed, encrypted Feishu requests: the shared vectors, and fresh ones built the way Feishu builds them.

use std::path::PathBuf;

use cardbot::config::{EncryptKey, VerificationToken, WebhookConfig};
use cardbot::store::EpochMillis;
use cardbot::webhook::{self, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// `fixtures/feishu/vectors.json` at the repository root.
pub fn vectors_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/feishu/vectors.json"
    ))
}

/// One request exactly as it reaches the function: headers and the raw body bytes.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// The two encrypted request vectors every number is measured on, and the app they belong to.
#[derive(Debug, Clone)]
pub struct Vectors {
    pub app_id: String,
    pub tenant_key: String,
    pub webhook: WebhookConfig,
    /// The `审批` message event (`p2p_event_encrypted`).
    pub event: SignedRequest,
    /// The 请假 click (`card_action_trigger_leave_encrypted`).
    pub card: SignedRequest,
    /// Decrypted envelopes of the two, templates for fresh requests.
    pub event_plaintext: Value,
    pub card_plaintext: Value,
    /// A clock inside the vectors' replay window.
    pub now: EpochMillis,
}

impl Vectors {
    pub fn load() -> Result<Self, String> {
        let path = vectors_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let all: Value = serde_json::from_str(&text).map_err(|e| format!("vectors.json: {e}"))?;
        let cfg = &all["test_config"];
        let field = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("vectors.json: missing {k}"))
        };
        let webhook = WebhookConfig::new(
            VerificationToken::new(field(cfg, "verification_token")?),
            Some(EncryptKey::new(field(cfg, "encrypt_key")?)),
        );
        let vector = |name: &str| -> Result<(SignedRequest, Value, i64), String> {
            let v = all["request_vectors"]
                .as_array()
                .and_then(|a| a.iter().find(|r| r["name"] == name))
                .ok_or_else(|| format!("vectors.json: no request vector {name}"))?;
            let mut headers = HeaderMap::new();
            for (k, val) in v["headers"].as_object().into_iter().flatten() {
                let name =
                    HeaderName::try_from(k.to_ascii_lowercase()).map_err(|e| e.to_string())?;
                let value = HeaderValue::from_str(val.as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                headers.insert(name, value);
            }
            let ts = headers
                .get(HEADER_TIMESTAMP)
                .and_then(|t| t.to_str().ok())
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or("vector without timestamp")?;
            let plaintext: Value = serde_json::from_str(&field(v, "plaintext")?)
                .map_err(|e| format!("{name} plaintext: {e}"))?;
            let body = field(v, "body")?.into_bytes();
            Ok((SignedRequest { headers, body }, plaintext, ts))
        };
        let (event, event_plaintext, ts) = vector("p2p_event_encrypted")?;
        let (card, card_plaintext, _) = vector("card_action_trigger_leave_encrypted")?;
        Ok(Self {
            app_id: field(cfg, "app_id")?,
            tenant_key: field(cfg, "tenant_key")?,
            webhook,
            event,
            card,
            event_plaintext,
            card_plaintext,
            now: ts * 1000 + 1000,
        })
    }

    /// The `审批` event again as a new delivery: its own `event_id` and `message_id`.
    pub fn fresh_event(&self, message_id: &str, now: EpochMillis) -> SignedRequest {
        let mut plain = self.event_plaintext.clone();
        plain["header"]["event_id"] = Value::from(format!("ev_{message_id}"));
        plain["event"]["message"]["message_id"] = Value::from(message_id);
        sign(&self.webhook, &plain, now)
    }

    /// The 请假 click again, on the card sent as `open_message_id`, with its own `event_id`.
    pub fn fresh_click(
        &self,
        open_message_id: &str,
        event_id: &str,
        now: EpochMillis,
    ) -> SignedRequest {
        let mut plain = self.card_plaintext.clone();
        plain["header"]["event_id"] = Value::from(event_id);
        plain["event"]["context"]["open_message_id"] = Value::from(open_message_id);
        plain["event"]["token"] = Value::from(format!("c-{event_id}"));
        sign(&self.webhook, &plain, now)
    }
}

/// The `url_verification` challenge as the console sends it with an Encrypt Key: encrypted, unsigned.
pub fn encrypted_challenge(webhook: &WebhookConfig) -> Result<SignedRequest, String> {
    let path = vectors_path().with_file_name("event_url_verification_plain.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let plain: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = webhook.encrypt_key.as_ref().ok_or("no Encrypt Key")?;
    let encrypted = webhook::encrypt(key, *uuid::Uuid::new_v4().as_bytes(), &plain.to_string());
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(SignedRequest {
        headers,
        body: serde_json::json!({ "encrypt": encrypted })
            .to_string()
            .into_bytes(),
    })
}

/// Encrypts and signs `envelope` as Feishu does (AES-256-CBC, random IV; SHA-256 signature).
pub fn sign(webhook: &WebhookConfig, envelope: &Value, now: EpochMillis) -> SignedRequest {
    let key = webhook
        .encrypt_key
        .as_ref()
        .unwrap_or_else(|| panic!("the bench signs with an Encrypt Key"));
    let iv = *uuid::Uuid::new_v4().as_bytes();
    let encrypted = webhook::encrypt(key, iv, &envelope.to_string());
    let body = serde_json::json!({ "encrypt": encrypted })
        .to_string()
        .into_bytes();
    let timestamp = (now / 1000).to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let signature = webhook::signature_sha256(&timestamp, &nonce, key, &body);
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in [
        (HEADER_TIMESTAMP, timestamp),
        (HEADER_NONCE, nonce),
        (HEADER_SIGNATURE, signature),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    SignedRequest { headers, body }
}

/// The request as a function URL (API Gateway HTTP API v2.0) event, what `lambda_http` receives.
pub fn function_url_event(request: &SignedRequest, path: &str) -> Value {
    let headers: serde_json::Map<String, Value> = request
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::from(v.to_str().unwrap_or_default()),
            )
        })
        .collect();
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "bench",
            "domainName": "bench.lambda-url.us-east-1.on.aws",
            "domainPrefix": "bench",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "Feishu"
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2024:00:00:00 +0000",
            "timeEpoch": 1_732_233_600_000_i64
        },
        "body": String::from_utf8_lossy(&request.body),
        "isBase64Encoded": false
    })
}
