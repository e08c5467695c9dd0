//! Test support: the Feishu simulator, DynamoDB Local, local-stack helpers.

pub mod dynamodb_local;
pub mod harness;
pub mod simulator;
