//! `cargo run --bin cardbot-admin -- <command>`: see `cardbot_admin::Cli` (and the README).
use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cardbot_admin::Cli::parse();
    // Checking a file needs no table (and no AWS credentials).
    if let cardbot_admin::Command::Definitions(cardbot_admin::DefinitionsCommand::Validate {
        file,
    }) = &cli.command
    {
        match cardbot_admin::validate_definitions(file) {
            Ok(out) => println!("{out}"),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
        return;
    }
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
