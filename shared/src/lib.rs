//! cardbot: everything the three Lambda functions share.

pub mod approval;
pub mod aws;
pub mod cards;
pub mod config;
pub mod deliver;
pub mod feishu;
pub mod function_url;
pub mod jobs;
pub mod logging;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod webhook;
