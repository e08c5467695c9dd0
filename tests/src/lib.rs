//! Test support: the Feishu simulator, DynamoDB Local, the function harness, the local stack of `make run`.

pub mod dynamodb_local;
pub mod faults;
pub mod harness;
pub mod local_stack;
pub mod simulator;
