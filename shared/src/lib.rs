//! cardbot: everything the three Lambda functions share.

pub mod approval;
pub mod cards;
pub mod config;
pub mod deliver;
pub mod feishu;
pub mod jobs;
pub mod store;
pub mod webhook;
