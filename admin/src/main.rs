//! `cargo run --bin cardbot-admin -- <command>`: see `cardbot_admin::Cli` (and the README).
use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cardbot_admin::Cli::parse();
    let aws = cardbot::aws::sdk_config().await;
    let store = match cardbot::store::dynamo::DynamoStore::from_sdk_config(&aws) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("cardbot-admin: {e} (set TABLE_NAME to the stack's TableName output)");
            std::process::exit(2);
        }
    };
    match cardbot_admin::run(&cli.command, &store, cardbot::store::now_millis()).await {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("cardbot-admin: {e}");
            std::process::exit(1);
        }
    }
}
