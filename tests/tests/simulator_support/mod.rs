//! Shared helpers of the simulator tests: a plain-reqwest Open API caller and a bot-side receiver.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use cardbot_tests::simulator::{crypto, RateLimits, SimConfig, Simulator};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A simulator plus a tenant token fetched over HTTP.
pub struct Api {
    pub sim: Simulator,
    pub http: reqwest::Client,
    pub token: String,
}

/// What an Open API call answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(-1)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    /// Asserts code 0 and returns `data`.
    pub fn ok(&self) -> Value {
        assert_eq!(
            (self.status, self.code()),
            (200, 0),
            "expected success, got {:?}",
            self.body
        );
        self.body["data"].clone()
    }
    /// Asserts a business error: HTTP 400 with `code`, and an X-Tt-Logid header.
    pub fn err(&self, code: i64) {
        assert_eq!(
            (self.status, self.code()),
            (400, code),
            "body: {}",
            self.body
        );
        assert!(
            self.header("x-tt-logid").is_some(),
            "errors carry X-Tt-Logid"
        );
    }
}

impl Api {
    /// Simulator with rate limits off (tests of limits turn them on).
    pub async fn start() -> Self {
        Self::start_with(SimConfig {
            rate_limits: RateLimits::disabled(),
            ..SimConfig::default()
        })
        .await
    }

    pub async fn start_with(config: SimConfig) -> Self {
        let secret = config.app_secret.clone();
        let app_id = config.app_id.clone();
        let sim = Simulator::start(config).await.expect("simulator starts");
        let http = reqwest::Client::new();
        let auth: Value = http
            .post(format!(
                "{}/open-apis/auth/v3/tenant_access_token/internal",
                sim.base_url()
            ))
            .json(&json!({"app_id": app_id, "app_secret": secret}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = auth["tenant_access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        Self { sim, http, token }
    }

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Reply {
        self.call_as(Some(&self.token), method, path, body.to_string())
            .await
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: String,
    ) -> Reply {
        let url = format!("{}{}", self.sim.base_url(), path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, url)
            .header("content-type", "application/json; charset=utf-8")
            .body(body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends an interactive message to the user's p2p chat; returns the reply.
    pub async fn send_card_content(&self, content: String) -> Reply {
        self.call(
            "POST",
            "/open-apis/im/v1/messages?receive_id_type=open_id",
            json!({"receive_id": self.sim.config().user_open_id, "msg_type": "interactive", "content": content}),
        )
        .await
    }

    /// Sends a raw card JSON as a message; returns its message_id.
    pub async fn send_card(&self, card: &Value) -> String {
        let data = self.send_card_content(card.to_string()).await.ok();
        data["message_id"].as_str().unwrap().to_owned()
    }

    /// Creates a CardKit entity; returns its card_id.
    pub async fn create_entity(&self, card: &Value) -> String {
        let r = self
            .call(
                "POST",
                "/open-apis/cardkit/v1/cards",
                json!({"type": "card_json", "data": card.to_string()}),
            )
            .await;
        r.ok()["card_id"].as_str().unwrap().to_owned()
    }

    /// Sends an entity by card_id; returns the message_id.
    pub async fn send_entity(&self, card_id: &str) -> String {
        let content = json!({"type": "card", "data": {"card_id": card_id}}).to_string();
        let data = self.send_card_content(content).await.ok();
        data["message_id"].as_str().unwrap().to_owned()
    }
}

/// The approval card of the tutorial, in JSON 2.0 with element ids.
pub fn approval_card() -> Value {
    json!({
        "schema": "2.0",
        "config": {"update_multi": true},
        "header": {"title": {"tag": "plain_text", "content": "审批"}, "template": "blue"},
        "body": {"elements": [
            {"tag": "markdown", "element_id": "md_prompt", "content": "请选择需要的操作"},
            {"tag": "column_set", "element_id": "btn_row", "columns": [
                {"tag": "column", "elements": [
                    {"tag": "button", "element_id": "btn_ot", "text": {"tag": "plain_text", "content": "加班"},
                     "behaviors": [{"type": "callback", "value": {"type": "work_overtime"}}]}]},
                {"tag": "column", "elements": [
                    {"tag": "button", "element_id": "btn_leave", "text": {"tag": "plain_text", "content": "请假"},
                     "behaviors": [{"type": "callback", "value": {"type": "leave"}}]}]}
            ]}
        ]}
    })
}

/// A 2.0 card saying `text` in one markdown element.
pub fn text_card(title: &str, text: &str) -> Value {
    json!({
        "schema": "2.0",
        "config": {"update_multi": true},
        "header": {"title": {"tag": "plain_text", "content": title}},
        "body": {"elements": [{"tag": "markdown", "element_id": "md_1", "content": text}]}
    })
}

// ------------------------------------------------------------ bot-side receiver

/// A request the receiver got, verified and decrypted.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub raw_body: String,
    /// The JSON after decryption (or the plain body).
    pub plaintext: Value,
    /// Whether `X-Lark-Signature` matched (SHA-256 with the Encrypt Key, or SHA-1 for legacy bodies).
    pub signature_ok: Option<bool>,
}

pub type Answer = Pin<Box<dyn Future<Output = (u16, String)> + Send>>;
pub type Handler = Arc<dyn Fn(Received) -> Answer + Send + Sync>;

/// A tiny stand-in for the bot's function URL: verifies, decrypts, records, answers via `handler`.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Decrypts an `encrypt` value (test-side implementation, strict PKCS#7).
pub fn decrypt(key: &str, encrypt: &str) -> Vec<u8> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encrypt)
        .unwrap();
    let (iv, ct) = raw.split_at(16);
    let key: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    cbc::Decryptor::<aes::Aes256>::new(&key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .unwrap()
}

impl Receiver {
    pub async fn start(
        encrypt_key: Option<String>,
        verification_token: String,
        handler: Handler,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let got2 = got.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let got = got2.clone();
            let handler = handler.clone();
            let encrypt_key = encrypt_key.clone();
            let verification_token = verification_token.clone();
            async move {
                let raw_body = String::from_utf8(body.to_vec()).unwrap();
                let parsed: Value = serde_json::from_str(&raw_body).unwrap();
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let (ts, nonce, sig) = (
                    h("x-lark-request-timestamp"),
                    h("x-lark-request-nonce"),
                    h("x-lark-signature"),
                );
                let legacy = parsed.get("schema").is_none()
                    && parsed.get("encrypt").is_none()
                    && parsed.get("open_message_id").is_some();
                let signature_ok = match (ts, nonce, sig) {
                    (Some(ts), Some(nonce), Some(sig)) => Some(if legacy {
                        crypto::sign_sha1(&ts, &nonce, &verification_token, raw_body.as_bytes())
                            == sig
                    } else {
                        crypto::sign_sha256(
                            &ts,
                            &nonce,
                            encrypt_key.as_deref().unwrap_or(""),
                            raw_body.as_bytes(),
                        ) == sig
                    }),
                    _ => None,
                };
                let plaintext = match (parsed.get("encrypt").and_then(Value::as_str), &encrypt_key)
                {
                    (Some(enc), Some(key)) => serde_json::from_slice(&decrypt(key, enc)).unwrap(),
                    _ => parsed,
                };
                let received = Received {
                    headers,
                    raw_body,
                    plaintext,
                    signature_ok,
                };
                got.lock().unwrap().push(received.clone());
                let (status, body) = handler(received).await;
                (StatusCode::from_u16(status).unwrap(), body)
            }
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            got,
            _stop: stop,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// A handler that always answers `status` with `body`.
pub fn answer(status: u16, body: Value) -> Handler {
    let body = body.to_string();
    Arc::new(move |_| {
        let body = body.clone();
        Box::pin(async move { (status, body) })
    })
}
