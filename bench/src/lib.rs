//! cardbot-bench: the harness behind `make bench` — signed requests, a fake
//! Feishu, a Lambda Runtime API emulator, the peer SDK runners and the report.

pub mod approvals;
pub mod capacity;
pub mod cost;
pub mod fake_feishu;
pub mod fixtures;
pub mod flows;
pub mod peers;
pub mod report;
pub mod runtime_api;
