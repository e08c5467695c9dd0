//! Test support: the Feishu simulator, DynamoDB Local, the local AWS emulator (Secrets Manager), the function harness,
//! the local stack of `make run`, the stack `make deploy-local` deploys to a local AWS emulator.

pub mod aws_emulator;
pub mod dynamodb_local;
pub mod faults;
pub mod harness;
pub mod local_aws;
mod local_server;
pub mod local_stack;
pub mod probed;

/// The Feishu simulator, now its own crate (`feishu-sim`, in `shared/sim`).
pub use feishu_sim as simulator;
