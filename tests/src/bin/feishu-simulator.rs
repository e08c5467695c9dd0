//! Runs the Feishu simulator as a process: `feishu-simulator --port N [--app-secret S] [--no-encrypt]`.

use cardbot_tests::simulator::{RateLimits, SimConfig, Simulator};

fn usage() -> ! {
    eprintln!(
        "usage: feishu-simulator [--port N] [--app-secret S] [--encrypt-key K | --no-encrypt] \
         [--verification-token T] [--no-rate-limits]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut config = SimConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--port" => config.port = value().parse().unwrap_or_else(|_| usage()),
            "--app-secret" => config.app_secret = value(),
            "--encrypt-key" => config.encrypt_key = Some(value()),
            "--no-encrypt" => config.encrypt_key = None,
            "--verification-token" => config.verification_token = value(),
            "--no-rate-limits" => config.rate_limits = RateLimits::disabled(),
            _ => usage(),
        }
    }
    let sim = match Simulator::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("feishu-simulator: {e}");
            std::process::exit(1);
        }
    };
    println!("feishu-simulator listening on {}", sim.base_url());
    let _ = tokio::signal::ctrl_c().await;
}
