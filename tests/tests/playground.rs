//! The playground in a real browser: headless Chromium from Debian's packages, driven through
//! WebDriver (chromedriver) by `fantoccini`, against the functions on DynamoDB Local and the
//! simulator over HTTP. `scripts/ensure-chromium.sh` (run by `make test`) installs both.
//! `CARDBOT_SCREENSHOT=<path>` saves the page with the approval card (`make screenshot`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cardbot::store::dynamo::DynamoStore;
use cardbot_tests::dynamodb_local;
use cardbot_tests::harness::Bot;
use cardbot_tests::simulator::{SimConfig, Simulator};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long a step may take: a page normally follows in under a second, but `make test` runs this
/// beside builds and other tests on 2 cores.
const WAIT: Duration = Duration::from_secs(90);

/// chromedriver on a free port, and the browser profile folder; both go with the test.
struct Driver {
    _child: tokio::process::Child,
    url: String,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `CARDBOT_SKIP_BROWSER=1` (a machine where Chromium cannot be installed): the browser tests
/// say so and end; `make test` then skips the Chromium install too.
fn browser_skipped() -> bool {
    let skipped = std::env::var("CARDBOT_SKIP_BROWSER").is_ok_and(|v| v == "1");
    if skipped {
        eprintln!("skipped: CARDBOT_SKIP_BROWSER=1 (the playground's browser test needs Chromium)");
    }
    skipped
}

fn binary(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chromedriver = binary("CARDBOT_CHROMEDRIVER", "/usr/bin/chromedriver");
    let child = tokio::process::Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{chromedriver}: {e} (scripts/ensure-chromium.sh installs chromium and chromium-driver)")
        });
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(started.elapsed() < WAIT, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = std::env::temp_dir().join(format!("cardbot-chromium-{}", uuid::Uuid::new_v4()));
    Driver {
        _child: child,
        url,
        profile,
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": binary("CARDBOT_CHROMIUM", "/usr/bin/chromium"),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                format!("--user-data-dir={}", driver.profile.display()),
            ],
        }),
    );
    ClientBuilder::rustls()
        .expect("rustls connector")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The bot on DynamoDB Local, its updater swept every 300 ms (Lambda's stream and schedule), and
/// the simulator's playground connected to it.
async fn stack(settings: &[(&str, &str)], sim: Arc<Simulator>) -> Arc<Bot<DynamoStore>> {
    let store = Arc::new(dynamodb_local::fresh_store().await);
    let bot = Arc::new(Bot::start_with(sim.clone(), store, "entity", settings).await);
    sim.connect_bot(&bot.event_url, &bot.card_url);
    let sweeper = bot.clone();
    tokio::spawn(async move {
        loop {
            sweeper.sweep().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    bot
}

async fn page_text(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls `read` every 200 ms until `done` holds for what it read, for up to [`WAIT`]; the last
/// read, or a panic naming `what` with it.
async fn eventually<F, Fut>(what: &str, read: F, done: impl Fn(&str) -> bool) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let started = Instant::now();
    loop {
        let seen = read().await;
        if done(&seen) {
            return seen;
        }
        assert!(started.elapsed() < WAIT, "{what}:\n{seen}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the page shows every one of `needles`.
async fn wait_for(c: &Client, needles: &[&str]) -> String {
    eventually(
        &format!("the page never showed {needles:?}"),
        || page_text(c),
        |text| needles.iter().all(|n| text.contains(n)),
    )
    .await
}

/// Waits until the browser's address holds `part` (a switch on the page reloads it).
async fn wait_url(c: &Client, part: &str) {
    let url = || async {
        c.current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    };
    eventually(&format!("the page never went to {part}"), url, |u| {
        u.contains(part)
    })
    .await;
}

/// Retries a browser action until it goes through: the page swaps itself when the bot changes
/// something, which can make a found element stale before it is used.
async fn retry<F, Fut>(what: &str, action: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
{
    let started = Instant::now();
    loop {
        match action().await {
            Ok(()) => return,
            Err(e) => assert!(started.elapsed() < WAIT, "{what}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Types into the message box and sends.
async fn say(c: &Client, text: &str) {
    retry("say", || async {
        let input = c.find(Locator::Css("#compose")).await?;
        input.clear().await?;
        input.send_keys(text).await?;
        c.find(Locator::Css("form.compose button"))
            .await?
            .click()
            .await
    })
    .await;
}

/// Clicks the first element `locator` finds.
async fn click(c: &Client, locator: Locator<'_>) {
    retry("click", || async { c.find(locator).await?.click().await }).await;
}

/// Types `text` into the field `selector` finds.
async fn fill(c: &Client, selector: &str, text: &str) {
    retry("fill", || async {
        c.find(Locator::Css(selector)).await?.send_keys(text).await
    })
    .await;
}

/// Picks who you are with the page's own switch.
async fn be(c: &Client, open_id: &str) {
    retry("switch user", || async {
        c.find(Locator::Css("form.who select[name=as]"))
            .await?
            .select_by_value(open_id)
            .await
    })
    .await;
}

/// Clicks the button with this label on the latest card that has one.
async fn press(c: &Client, label: &str) {
    let xpath =
        format!("(//div[contains(@class,'card')]//button[normalize-space()='{label}'])[last()]");
    click(c, Locator::XPath(&xpath)).await;
}

/// Sets a form field as a person's input would (the page keeps a form being filled as it is).
async fn set(c: &Client, selector: &str, value: &str) {
    retry("set", || async {
        let done = c
            .execute(
                "const e = document.querySelector(arguments[0]); if (!e) return false; \
                 e.value = arguments[1]; e.dispatchEvent(new Event('change', { bubbles: true })); \
                 return e.value === arguments[1];",
                vec![json!(selector), json!(value)],
            )
            .await?;
        if done == json!(true) {
            Ok(())
        } else {
            Err(fantoccini::error::CmdError::NotJson(format!(
                "{selector} not set"
            )))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_asks_clicks_and_sees_the_card_approved_and_hostile_text_stays_text() {
    if browser_skipped() {
        return;
    }
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let _bot = stack(&[], sim.clone()).await;
    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&sim.playground_url()).await.unwrap();
    wait_for(&c, &["cardbot playground", "Chats"]).await;

    say(&c, "审批").await;
    wait_for(&c, &["请假", "加班"]).await;
    // The side panel lists what the bot asked Feishu for this card: the entity, then its reply.
    click(
        &c,
        Locator::XPath("(//a[contains(@class,'calls-link')])[last()]"),
    )
    .await;
    wait_for(&c, &["POST /cardkit/v1/cards → 200", "/reply → 200"]).await;
    if let Ok(path) = std::env::var("CARDBOT_SCREENSHOT") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
    }
    press(&c, "请假").await;
    // The answer shows at once, then the post-answer job walks the card to approved, live.
    wait_for(&c, &["请假通过", "/batch_update", "/elements/note/content"]).await;

    let hostile = "<script>window.hacked=1</script></at><b>x</b>";
    say(&c, hostile).await;
    let text = wait_for(&c, &[hostile]).await;
    assert!(text.contains(hostile));
    let safe = c
        .execute(
            "return window.hacked === undefined \
               && document.querySelectorAll('#messages script').length === 0 \
               && [...document.querySelectorAll('.message .text')].every(e => e.children.length === 0);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(safe, json!(true), "user text became markup");

    // A message over the bot's body cap is refused, and the page says so.
    retry("long message", || async {
        c.execute(
            "document.getElementById('compose').value = 'x'.repeat(300000);",
            vec![],
        )
        .await?;
        c.find(Locator::Css("form.compose button"))
            .await?
            .click()
            .await
    })
    .await;
    wait_for(&c, &["the bot answered HTTP 413"]).await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_the_form_is_approved_by_the_approver_in_their_own_chat() {
    if browser_skipped() {
        return;
    }
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let approver = sim.add_users(1).remove(0);
    let _bot = stack(
        &[("APPROVER_OPEN_IDS", approver.open_id.as_str())],
        sim.clone(),
    )
    .await;
    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&sim.playground_url()).await.unwrap();

    say(&c, "审批").await;
    wait_for(&c, &["请假", "加班"]).await;
    press(&c, "请假").await;
    wait_for(&c, &["提交"]).await;
    set(&c, "select[name=f_leave_type]", "annual").await;
    set(&c, "input[name=d_start_date]", "2026-12-01").await;
    set(&c, "input[name=d_end_date]", "2026-12-03").await;
    // The reason reaches the cards' markdown escaped; the page shows it as written, as text.
    let reason = "family trip <b>x</b></at> & **y** (1+1)";
    fill(&c, "input[name=f_reason]", reason).await;
    press(&c, "提交").await;
    wait_for(&c, &["审批中", reason]).await;

    // Switch to the approver: their p2p chat holds the approver's card.
    be(&c, &approver.open_id).await;
    wait_for(&c, &["同意", "拒绝", reason]).await;
    press(&c, "同意").await;
    wait_for(&c, &["请假通过"]).await;

    // Back as the requester: their card shows the decision too.
    be(&c, &sim.config().user().open_id).await;
    wait_for(&c, &["请假通过", reason]).await;
    // Shown literally (markup would not read as `<b>x</b>` or `**y**`), and no element made of it.
    let no_markup = c
        .execute(
            "return [...document.querySelectorAll('.card-body b')].every(b => b.textContent !== 'x' && b.textContent !== 'y');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(no_markup, json!(true), "the reason became markup");
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_group_a_legacy_click_approves_in_the_english_client() {
    if browser_skipped() {
        return;
    }
    let sim = Arc::new(Simulator::start(SimConfig::default()).await.unwrap());
    let _bot = stack(&[], sim.clone()).await;
    let group = sim.config().group_chat_id.clone();
    let driver = driver().await;
    let c = browser(&driver).await;
    c.goto(&sim.playground_url()).await.unwrap();

    click(&c, Locator::Css("input[name=legacy]")).await;
    wait_url(&c, "legacy=1").await;
    click(&c, Locator::XPath("//nav//a[contains(., '(group)')]")).await;
    wait_url(&c, &format!("chat={group}")).await;
    // The English client keeps the chat, and shows the cards' en_us texts and toasts.
    click(&c, Locator::Css("input[name=lang]")).await;
    wait_url(&c, "lang=en").await;
    wait_url(&c, &format!("chat={group}")).await;
    say(&c, "审批").await;
    wait_for(
        &c,
        &["@cardbot 审批", "Leave", "Overtime", "Send", "Summary: "],
    )
    .await;
    press(&c, "Leave").await;
    wait_for(&c, &["Your leave request was submitted"]).await;
    wait_for(&c, &["Leave approved"]).await;

    // What the bot received: the group message with its @bot mention, and the old-style callback.
    let deliveries = sim.deliveries();
    let message = deliveries
        .iter()
        .find(|d| d.kind == "event")
        .expect("the message went to the bot");
    let event = &message.plaintext["event"]["message"];
    assert_eq!(event["chat_type"], "group");
    assert_eq!(event["chat_id"], group.as_str());
    assert_eq!(
        event["mentions"][0]["id"]["open_id"],
        sim.config().bot_open_id.as_str()
    );
    let kinds: Vec<&str> = deliveries
        .iter()
        .filter(|d| d.kind.starts_with("card_callback"))
        .map(|d| d.kind.as_str())
        .collect();
    assert_eq!(kinds, ["card_callback_legacy"]);
    assert!(deliveries.iter().all(|d| d.status == Some(200)));
    c.close().await.unwrap();
}
