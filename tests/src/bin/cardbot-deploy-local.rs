//! `make deploy-local`: the real template deployed with `sam deploy` to a local AWS emulator, until
//! Ctrl-C or SIGTERM. Settings: `cardbot_tests::local_aws` and `docs/deploy-local.md`.

use cardbot_tests::local_aws::{self, DeployedStack, LocalAwsOptions};
use cardbot_tests::local_stack::process::shutdown_signal;
use cardbot_tests::local_stack::{demo, lines, Demo, FeishuTarget, Options};

#[tokio::main]
async fn main() {
    let options = Options::from_env().and_then(|o| {
        Ok((
            o,
            LocalAwsOptions::from_lookup(|name| std::env::var(name).ok())?,
        ))
    });
    let (options, aws) = match options {
        Ok(o) => o,
        Err(e) => {
            eprintln!("make deploy-local: {e}");
            std::process::exit(2);
        }
    };
    // Children are spawned from this task (the main thread), so their parent-death signal holds.
    let mut stack = DeployedStack::new(options, aws);
    let started = tokio::select! {
        r = stack.start() => r.cloned(),
        s = shutdown_signal() => Err(format!("{s}: stopped while starting")),
    };
    let urls = match started {
        Ok(urls) => urls,
        Err(e) => {
            eprintln!("make deploy-local: {e}");
            stack.stop().await;
            std::process::exit(1);
        }
    };

    if let (Some(sim), true) = (&stack.simulator, stack.options.demo != Demo::Off) {
        let approver = stack.approver.as_ref();
        let played = tokio::select! {
            r = demo::play(sim, &urls.event_callback, &urls.card_callback, approver) => Some(r),
            _ = shutdown_signal() => None,
        };
        match played {
            Some(Ok(_)) => {}
            Some(Err(e)) => println!("── demo stopped: {e} ──"),
            None => {
                stack.stop().await;
                return;
            }
        }
    }

    println!();
    println!("{}{}", lines::EVENT_CALLBACK_URL, urls.event_callback);
    println!("{}{}", lines::CARD_CALLBACK_URL, urls.card_callback);
    if let Some(deployed) = &stack.deployed {
        println!("{}{}", local_aws::lines::STACK, deployed.stack);
        println!("{}{}", local_aws::lines::EMULATOR, deployed.endpoint);
        println!(
            "  (table {}, secrets {} and {}: any AWS SDK or CLI reads them with AWS_ENDPOINT_URL={} and keys test/test)",
            deployed.outputs.get("TableName").map_or("?", String::as_str),
            deployed.outputs.get("FeishuAppSecretArn").map_or("?", String::as_str),
            deployed.outputs.get("FeishuWebhookSecretArn").map_or("?", String::as_str),
            deployed.endpoint,
        );
    }
    match (&stack.simulator, &stack.options.feishu) {
        (Some(sim), _) => {
            let base = sim.base_url();
            println!("{}{base}/playground", lines::PLAYGROUND);
            println!("{}{base}/_sim/", lines::SIMULATOR_URL);
            println!("(the simulator's control API: docs/local-development.md)");
        }
        (None, FeishuTarget::External { .. }) => {
            println!(
                "Expose port {} with a tunnel (cloudflared tunnel --url {}); only the two URLs above are served there,",
                stack.options.watch_port,
                urls.watch
            );
            println!("then paste https://<tunnel host>/lambda-url/event-callback/ and https://<tunnel host>/lambda-url/card-action/ into the Feishu console.");
        }
        (None, FeishuTarget::Simulator { .. }) => {}
    }
    println!();
    println!("{}Ctrl-C stops everything.", lines::READY);

    let reason = tokio::select! {
        s = shutdown_signal() => s.to_owned(),
        failure = stack.wait_for_failure() => format!("stopping: {failure}"),
    };
    println!("{reason}");
    stack.stop().await;
}
