//! feishu-kit: the Feishu (Lark) half of a serverless card bot on AWS Lambda.
//!
//! - [`webhook`]: bytes of an event subscription or card callback in, a verified [`webhook::Inbound`]
//!   out (signature, AES decryption, replay window, Verification Token), with typed events and the
//!   click ([`webhook::CardClick`]) whose value the bot parses into its own action type.
//! - [`cards`]: card JSON 2.0 as types, callback answers, CardKit's element-level edits, text
//!   escaping, and [`cards::CardDelivery`] (a card entity or a plain message).
//! - [`api`]: the Open API client ([`api::FeishuClient`] behind the object-safe [`api::FeishuApi`]):
//!   the tenant_access_token, im messages, CardKit, the delayed update, contact; every call bounded
//!   by a [`api::Deadline`], paced by an app-wide rate limiter shared through the store.
//! - [`card_update`]: which API shows a changed card (CardKit on the entity, the callback's update
//!   token while it lasts, then message PATCH), and what a failed call means.
//! - [`store`]: the ports ([`store::DedupStore`] with exactly-once claims and [`store::once`],
//!   [`store::CardStore`], [`store::JobStore`], [`store::TokenStore`], [`store::RateStore`]) and their
//!   DynamoDB adapter ([`store::dynamo::DynamoStore`]) on one table.
//! - [`lambda`]: the Lambda glue: the function URL runner, secrets, logging; [`aws`]: the AWS SDK
//!   config a function loads once and shares between its clients.
//! - [`config`] and [`metrics`]: settings read at start, and the platform's CloudWatch metrics.
//!
//! A bot built on the kit names its own actions, card states and job kinds; the kit never does.
//! `examples/poll` in the repository is a whole bot on the kit alone.

#![warn(missing_docs)]

pub mod api;
pub mod aws;
pub mod card_update;
pub mod cards;
pub mod config;
pub mod events;
pub mod lambda;
pub mod metrics;
pub mod store;
pub mod webhook;
