//! cardbot: the approval bot on the Feishu kit ([`feishu_kit`]): the approval domain, its card
//! views and commands, the job kinds and their effects, the app's config and metrics, and the
//! three functions' handlers ([`entry`]; the binaries in `functions/` only wire them).
//!
//! The kit's modules are re-exported under the names the app has always used (`cardbot::store`,
//! `cardbot::feishu` for the kit's `api`, …), so the functions, tests and benchmarks read the
//! same; a bot of another team depends on `feishu-kit` directly.

pub mod approval;
pub mod config;
pub mod decisions;
pub mod definitions;
pub mod deliver;
pub mod entry;
pub mod jobs;
pub mod telemetry;
pub mod tenants;

pub use feishu_kit::api as feishu;
pub use feishu_kit::lambda::{function_url, logging, secrets};
pub use feishu_kit::{aws, card_update, cards, events, metrics, store, webhook};
