//! `make run`: the whole bot on this machine, until Ctrl-C. Settings: see `cardbot_tests::local_stack`.

use cardbot_tests::local_stack::process::shutdown_signal;
use cardbot_tests::local_stack::{demo, lines, Demo, FeishuTarget, LocalStack, Options, Urls};

#[tokio::main]
async fn main() {
    let options = match Options::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("make run: {e}");
            std::process::exit(2);
        }
    };
    // Children are spawned from this task (the main thread), so their parent-death signal holds.
    let mut stack = LocalStack::new(options);
    let started = tokio::select! {
        r = stack.start() => r.cloned(),
        s = shutdown_signal() => Err(format!("{s}: stopped while starting")),
    };
    let urls = match started {
        Ok(urls) => urls,
        Err(e) => {
            eprintln!("make run: {e}");
            stack.stop().await;
            std::process::exit(1);
        }
    };

    let mut demo_value = None;
    if let (Some(sim), true) = (&stack.simulator, stack.options.demo != Demo::Off) {
        let approver = stack.approver.as_ref();
        let played = tokio::select! {
            r = demo::play(sim, &urls.event_callback, &urls.card_callback, approver) => Some(r),
            _ = shutdown_signal() => None,
        };
        match played {
            Some(Ok(message_id)) => {
                demo_value = sim
                    .card(&message_id)
                    .and_then(|c| demo::button_value(&c.card, demo::LEAVE_BUTTON));
            }
            Some(Err(e)) => println!("── demo stopped: {e} ──"),
            None => {
                stack.stop().await;
                return;
            }
        }
    }

    print_how_to(&stack, &urls, demo_value);
    let reason = tokio::select! {
        s = shutdown_signal() => s.to_owned(),
        failure = stack.wait_for_failure() => format!("stopping: {failure}"),
    };
    println!("{reason}");
    stack.stop().await;
}

fn print_how_to(stack: &LocalStack, urls: &Urls, value: Option<serde_json::Value>) {
    println!();
    println!("{}{}", lines::EVENT_CALLBACK_URL, urls.event_callback);
    println!("{}{}", lines::CARD_CALLBACK_URL, urls.card_callback);
    println!(
        "{}{} (table {})",
        lines::DYNAMODB,
        urls.dynamodb,
        stack.options.table_name
    );
    match (&stack.simulator, &stack.options.feishu) {
        (Some(sim), _) => {
            let base = sim.base_url();
            let chat = &sim.config().p2p_chat_id;
            let value = value
                .map(|v| v.to_string())
                .unwrap_or_else(|| r#"{"type":"leave"}"#.into());
            println!("{}{base}/playground", lines::PLAYGROUND);
            println!("{}{base}/_sim/", lines::SIMULATOR_URL);
            println!();
            println!("Talk to the bot as the simulator's user (Feishu signs, encrypts and posts for you):");
            println!("  # send a message");
            println!(
                "  curl -s {base}/_sim/user/message -H 'content-type: application/json' \\\n    -d '{{\"url\":\"{}\",\"text\":\"审批\"}}'",
                urls.event_callback
            );
            println!("  # the chat (texts and cards, with their message_id)");
            println!("  curl -s {base}/_sim/chats/{chat}/messages");
            println!("  # a card as the user sees it (.text), and its history");
            println!("  curl -s {base}/_sim/messages/<message_id>/card");
            println!("  # click 请假 on that card");
            println!(
                "  curl -s {base}/_sim/user/click -H 'content-type: application/json' \\\n    -d '{{\"url\":\"{}\",\"message_id\":\"<message_id>\",\"value\":{value}}}'",
                urls.card_callback
            );
            println!("  # every Open API call the bot made");
            println!("  curl -s {base}/_sim/calls");
        }
        (None, FeishuTarget::External { base_url }) => {
            println!();
            println!(
                "The functions talk to {base_url}. Expose port {} with a tunnel, e.g.",
                stack.options.watch_port
            );
            println!(
                "  cloudflared tunnel --url {}    (or: ngrok http {})",
                urls.watch, stack.options.watch_port
            );
            println!("then paste https://<tunnel host>/lambda-url/event-callback/ into 事件与回调 > 事件配置,");
            println!(
                "and https://<tunnel host>/lambda-url/card-action/ into 事件与回调 > 回调配置."
            );
        }
        (None, FeishuTarget::Simulator { .. }) => {}
    }
    println!();
    println!("{}Ctrl-C stops everything.", lines::READY);
}
