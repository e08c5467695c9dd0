//! The poll bot end to end: the Feishu simulator over real HTTP posts signed, encrypted events and
//! clicks to the bot's handlers behind local function URLs; the store is DynamoDB Local (the
//! endpoint from `CARDBOT_DYNAMODB_ENDPOINT`, which `make test` exports), and the tally function
//! is fed the table's real stream records, as Lambda would. Assertions are on the card entity as
//! the simulator holds it, on its CardKit call log, and on the table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use feishu_kit::api::{Clock, FeishuClient, FeishuClientConfig};
use feishu_kit::config::{EncryptKey, VerificationToken, WebhookConfig};
use feishu_kit::store::dynamo::{self, DynamoStore};
use feishu_kit::store::{CardState, CardStore, EpochMillis};
use feishu_sim::function_url::serve;
use feishu_sim::{ids, CallbackDelivery, ChatKind, Sender, SimConfig, SimUser, Simulator};
use poll_bot::{parse_command, render, Poll, PollData};
use serde_json::{json, Value};

const ENDPOINT_ENV: &str = "CARDBOT_DYNAMODB_ENDPOINT";
const REGION: &str = "us-east-1";

/// The bot's clock is the simulator's.
struct SimClock(Arc<Simulator>);

impl Clock for SimClock {
    fn now_millis(&self) -> EpochMillis {
        self.0.now_ms()
    }
}

fn endpoint() -> String {
    std::env::var(ENDPOINT_ENV).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_ENV} is not set: start DynamoDB Local with \
             `eval \"$(scripts/dynamodb-local.sh start)\"` (make test does)"
        )
    })
}

/// A `DynamoStore` on a fresh table made from the kit's table definition (stream on).
async fn fresh_store() -> DynamoStore {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "dynamodb-local"))
        .endpoint_url(endpoint())
        .retry_config(dynamo::retry_config())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let table = format!("poll-test-{}-{nanos}", std::process::id());
    dynamo::create_table(&client, &table).await.expect("create the table in DynamoDB Local");
    DynamoStore::new(client, table)
}

/// The table's stream as Lambda reads it: every record since the last batch, in order.
struct TableStream {
    http: reqwest::Client,
    arn: String,
    /// Sequence numbers already handed out.
    seen: std::collections::HashSet<String>,
}

impl TableStream {
    /// DynamoDB Local's Streams API (JSON 1.0 on the table's endpoint). A refusal is tried again
    /// a few times (DynamoDB Local answers a busy stream with a 400 now and then, as the make run
    /// stack's stream driver also sees), then fails with its body.
    async fn call(http: &reqwest::Client, action: &str, body: Value) -> Value {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=test/20240101/{REGION}/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let mut last = String::new();
        for _ in 0..10 {
            let response = http
                .post(endpoint())
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", format!("DynamoDBStreams_20120810.{action}"))
                .header("authorization", &authorization)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            if status.is_success() {
                return serde_json::from_str(&text).unwrap();
            }
            last = format!("{status}: {text}");
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        panic!("{action}: {last}");
    }

    /// Reads the stream of `table` from its start.
    async fn open(table: &str) -> Self {
        let http = reqwest::Client::new();
        let streams = Self::call(&http, "ListStreams", json!({"TableName": table})).await;
        let arn = streams["Streams"][0]["StreamArn"].as_str().expect("the table has a stream");
        Self { http, arn: arn.to_owned(), seen: Default::default() }
    }

    /// The records written since the last call, as the `{"Records": [...]}` event Lambda sends.
    /// Every shard is read from its start each time (DynamoDB Local opens new shards as it goes,
    /// and refuses an old iterator with TrimmedDataAccessException); the records already handed
    /// out are skipped by sequence number.
    async fn batch(&mut self) -> Value {
        let described =
            Self::call(&self.http, "DescribeStream", json!({"StreamArn": self.arn})).await;
        let mut records = Vec::new();
        for shard in
            described["StreamDescription"]["Shards"].as_array().cloned().unwrap_or_default()
        {
            let body = json!({"StreamArn": self.arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"});
            let answer = Self::call(&self.http, "GetShardIterator", body).await;
            let mut iterator = answer["ShardIterator"].as_str().map(str::to_owned);
            while let Some(current) = iterator.take() {
                let body = json!({"ShardIterator": current, "Limit": 1000});
                let answer = Self::call(&self.http, "GetRecords", body).await;
                let got = answer["Records"].as_array().cloned().unwrap_or_default();
                if got.is_empty() {
                    break;
                }
                for mut record in got {
                    let sequence =
                        record["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default();
                    if self.seen.insert(sequence.to_owned()) {
                        repair_empty_maps(&mut record);
                        records.push(record);
                    }
                }
                iterator = answer["NextShardIterator"].as_str().map(str::to_owned);
            }
        }
        json!({ "Records": records })
    }
}

/// DynamoDB Local's GetRecords writes an empty map attribute (a poll without votes) as `{}` where
/// DynamoDB Streams, and so Lambda's event, write `{"M": {}}`.
fn repair_empty_maps(record: &mut Value) {
    fn repair(value: &mut Value) {
        match value {
            Value::Object(typed) if typed.is_empty() => *value = json!({"M": {}}),
            Value::Object(typed) => {
                if let Some(Value::Object(map)) = typed.get_mut("M") {
                    map.values_mut().for_each(repair);
                }
                if let Some(Value::Array(list)) = typed.get_mut("L") {
                    list.iter_mut().for_each(repair);
                }
            }
            _ => {}
        }
    }
    for image in ["NewImage", "OldImage"] {
        if let Some(Value::Object(attributes)) = record["dynamodb"].get_mut(image) {
            attributes.values_mut().for_each(repair);
        }
    }
}

type Bot = Poll<DynamoStore, FeishuClient>;

/// The simulator, the bot wired to it as its three Lambdas would be, and the two function URLs.
struct World {
    sim: Arc<Simulator>,
    bot: Arc<Bot>,
    store: Arc<DynamoStore>,
    stream: TableStream,
    event_url: String,
    card_url: String,
}

impl World {
    async fn start() -> Self {
        let sim = Arc::new(Simulator::start(SimConfig::default()).await.expect("simulator starts"));
        let store = Arc::new(fresh_store().await);
        let stream = TableStream::open(store.table_name()).await;
        let app = sim.config();
        let clock: Arc<dyn Clock> = Arc::new(SimClock(sim.clone()));
        let client = FeishuClientConfig {
            base_url: sim.base_url(),
            app_id: app.app_id.clone(),
            app_secret: app.app_secret.clone(),
        };
        let feishu = FeishuClient::builder(client, store.clone()).clock(clock.clone()).build();
        let webhook = WebhookConfig::new(
            VerificationToken::new(app.verification_token.clone()),
            app.encrypt_key.clone().map(EncryptKey::new),
        );
        let bot = Arc::new(Poll {
            store: store.clone(),
            feishu: Arc::new(feishu.expect("client")),
            webhook,
            clock,
        });
        let events = bot.clone();
        let event_url = serve(move |request| {
            let bot = events.clone();
            async move { bot.on_event(request).await }
        })
        .await;
        let clicks = bot.clone();
        let card_url = serve(move |request| {
            let bot = clicks.clone();
            async move { bot.on_click(request).await }
        })
        .await;
        Self { sim, bot, store, stream, event_url, card_url }
    }

    /// Lambda's part: the stream's new records go to the tally function.
    async fn run_tally(&mut self) {
        let batch = self.stream.batch().await;
        self.bot.on_tally(batch).await.expect("the tally reaches the card entity");
    }

    fn cardkit_updates(&self, card_id: &str) -> Vec<Value> {
        let path = format!("/open-apis/cardkit/v1/cards/{card_id}");
        (self.sim.calls().into_iter())
            .filter(|call| call.method == "PUT" && call.path == path)
            .inspect(|call| assert_eq!(call.code, Some(0), "CardKit refused: {}", call.response))
            .map(|call| serde_json::from_str(&call.body).unwrap())
            .collect()
    }

    async fn poll(&self, card_key: &str) -> (CardState, PollData) {
        let state = self.store.get_card(card_key).await.unwrap().expect("the poll's state");
        let poll = serde_json::from_value(state.data.clone()).unwrap();
        (state, poll)
    }

    /// `user` clicks `button`; when the bot answers "Try again" (its 2.5 s budget ran out on a
    /// loaded machine: nothing was counted, the claim released) the user clicks again, as a person
    /// would. The answered click is returned.
    async fn press(&self, user: &SimUser, card: &str, button: &str) -> CallbackDelivery {
        for _ in 0..3 {
            let clicked = self.sim.press_as(&self.card_url, user, card, button, &[]).await.unwrap();
            assert_eq!(clicked.delivery.status, Some(200), "{}", clicked.delivery.response_body);
            assert_eq!(clicked.client_error, None);
            if toast(&clicked) != "Try again" {
                return clicked;
            }
        }
        panic!("{button}: the bot asked to try again three times");
    }
}

fn toast(clicked: &CallbackDelivery) -> String {
    clicked
        .toast
        .as_ref()
        .map(|t| t["i18n"]["en_us"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The tally element's lines on the card (`Option: n`).
fn tally(card: &Value) -> Vec<String> {
    let elements = card["body"]["elements"].as_array().unwrap();
    let tally = elements.iter().find(|e| e["element_id"] == "tally").expect("a tally element");
    tally["content"].as_str().unwrap().lines().map(str::to_owned).collect()
}

fn buttons(card: &Value) -> Vec<String> {
    let elements = card["body"]["elements"].as_array().unwrap();
    let ids = elements.iter().filter(|e| e["tag"] == "button");
    ids.map(|e| e["element_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn three_users_vote_once_each_and_the_tally_reaches_the_card_entity_through_cardkit() {
    let mut world = World::start().await;
    let sim = world.sim.clone();

    // Tom asks for a poll in the group (the simulator @mentions the bot). One option tries markup.
    let command = "poll Lunch? | Noodles | Rice | <at id=all></at> **Salad**";
    let asked = sim.send_user_message(&world.event_url, ChatKind::Group, command).await;
    assert_eq!(asked.status, Some(200), "{}", asked.response_body);
    // Feishu re-delivers the message event: still one poll.
    let again = sim.post_event(&world.event_url, &asked.plaintext).await;
    assert_eq!(again.status, Some(200), "{}", again.response_body);
    let cards: Vec<_> = (sim.messages(ids::GROUP_CHAT_ID).into_iter())
        .filter(|m| matches!(m.sender, Sender::App { .. }) && m.msg_type == "interactive")
        .collect();
    assert_eq!(cards.len(), 1, "one poll card for one command: {cards:?}");
    let card = cards[0].message_id.clone();
    let card_id = cards[0].card_id.clone().expect("sent as a CardKit card entity, by card_id");
    let created = sim.calls().into_iter().filter(|c| c.path == "/open-apis/cardkit/v1/cards");
    assert_eq!(created.count(), 1, "one card entity created");
    let shown = sim.card(&card).unwrap();
    assert_eq!(shown.card_id.as_deref(), Some(card_id.as_str()));
    assert_eq!(buttons(&shown.card), ["vote_0", "vote_1", "vote_2", "close"]);
    // Markdown would read the markup: escaped there. A button label is plain_text, shown as written.
    let markdown = tally(&shown.card).join("\n");
    assert!(!markdown.contains("<at") && !markdown.contains("**"), "escaped: {markdown}");
    assert!(shown.text.contains("[<at id=all></at> **Salad**]"), "{}", shown.text);

    // Tom and Alice vote Noodles, Bob votes Rice; Feishu re-delivers Alice's click.
    let tom = sim.config().user();
    let (alice, bob) = {
        let added = sim.add_users(2);
        (added[0].clone(), added[1].clone())
    };
    assert_eq!(toast(&world.press(&tom, &card, "vote_0").await), "Vote counted");
    let alices = world.press(&alice, &card, "vote_0").await;
    assert_eq!(toast(&alices), "Vote counted");
    let bobs_first = world.press(&bob, &card, "vote_1").await;
    assert_eq!(toast(&bobs_first), "Vote counted");
    let redelivered = sim.redeliver_callback(&world.card_url, &alices).await;
    assert_eq!(redelivered.delivery.status, Some(200));
    assert_eq!(redelivered.toast, None, "a re-delivered click is answered without working");

    // The table holds exactly three votes, once each.
    let (state, poll) = world.poll(&card).await;
    let expected: BTreeMap<String, usize> =
        [(tom.open_id.clone(), 0), (alice.open_id.clone(), 0), (bob.open_id.clone(), 1)].into();
    assert_eq!(poll.votes, expected);
    assert_eq!((state.status.as_str(), state.version), ("open", 4), "created + 3 votes");
    assert_eq!(state.card_id.as_deref(), Some(card_id.as_str()));

    // Lambda hands the table's stream to the tally function: CardKit updates the entity.
    world.run_tally().await;
    let shown = sim.card(&card).unwrap();
    assert_eq!(tally(&shown.card)[..2], ["Noodles: 2", "Rice: 1"]);
    assert!(tally(&shown.card)[2].ends_with(": 0"), "{:?}", tally(&shown.card));
    assert!(shown.text.contains("3 votes · open"), "{}", shown.text);
    assert_eq!(shown.history.last().unwrap().via, "cardkit.update");
    let updates = world.cardkit_updates(&card_id);
    assert_eq!(updates.len(), 1, "one CardKit write for the whole batch");
    let sequences = |updates: &[Value]| {
        updates.iter().map(|u| u["sequence"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(sequences(&updates), [4], "the sequence is the state's version");

    // Bob moves his vote to the third option: still three votes. A late re-delivery of his first
    // click must not move it back.
    assert_eq!(toast(&world.press(&bob, &card, "vote_2").await), "Vote counted");
    let late_copy = sim.redeliver_callback(&world.card_url, &bobs_first).await;
    assert_eq!((late_copy.delivery.status, late_copy.toast), (Some(200), None));
    world.run_tally().await;
    let shown = sim.card(&card).unwrap();
    assert_eq!(tally(&shown.card)[..2], ["Noodles: 2", "Rice: 0"]);
    assert!(tally(&shown.card)[2].ends_with(": 1"));
    let (state, poll) = world.poll(&card).await;
    assert_eq!((poll.votes.len(), poll.votes[&bob.open_id], state.version), (3, 2, 5));

    // Only the poll's creator closes it.
    assert_eq!(toast(&world.press(&alice, &card, "close").await), "Creator only");
    assert_eq!(world.poll(&card).await.0.status, "open");
    assert_eq!(toast(&world.press(&tom, &card, "close").await), "Poll closed");
    world.run_tally().await;
    let shown = sim.card(&card).unwrap();
    assert_eq!(buttons(&shown.card), Vec::<String>::new(), "a closed poll has no buttons");
    assert!(shown.text.contains("3 votes · closed"), "{}", shown.text);
    assert_eq!(tally(&shown.card)[..2], ["Noodles: 2", "Rice: 0"]);
    assert_eq!(shown.history.last().unwrap().via, "cardkit.update");
    let updates = world.cardkit_updates(&card_id);
    assert_eq!(sequences(&updates), [4, 5, 6], "each CardKit write with a higher sequence");

    // A later vote, from a client still showing the open card, changes nothing.
    let (before, _) = world.poll(&card).await;
    let late = sim.click_card_as(&world.card_url, &alice, &card, json!({"vote": 1})).await.unwrap();
    assert_eq!(toast(&late), "Poll closed");
    let (after, poll) = world.poll(&card).await;
    assert_eq!((after.version, after.status.as_str()), (before.version, "closed"));
    assert_eq!(poll.votes[&alice.open_id], 0);
    world.run_tally().await;
    assert_eq!(world.cardkit_updates(&card_id).len(), 3, "nothing new to show");
}

#[test]
fn commands_are_parsed_capped_and_rendered_escaped() {
    assert_eq!(parse_command("hello"), None);
    assert_eq!(parse_command("poll Lunch? | only one"), None, "two options at least");
    let poll = parse_command("@_user_1 投票 Lunch?|Noodles| Rice |").unwrap();
    assert_eq!(
        (poll.question.as_str(), poll.options.as_slice()),
        ("Lunch?", &["Noodles".to_owned(), "Rice".to_owned()][..])
    );
    let long = parse_command(&format!("poll {} | a | b", "q".repeat(300))).unwrap();
    assert_eq!(long.question.chars().count(), 100, "the question is capped");
    let poll = parse_command("poll <b>Q</b> | [x](http://e.vil) | `y`").unwrap();
    let card = render(&poll, true);
    let card: feishu_kit::cards::Card = serde_json::from_value(card).expect("card JSON 2.0");
    card.validate().expect("a card Feishu takes");
    let markdown = tally(&card.to_value()).join("\n");
    assert!(!markdown.contains("[x](") && !markdown.contains('`'), "{markdown}");
    assert_eq!(card.header.unwrap().title.content, "<b>Q</b>", "plain_text: shown as written");
}
