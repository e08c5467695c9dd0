//! The three functions' handlers, each built once per cold start by its binary in `functions/`:
//! the event subscription URL ([`event_callback`]), the card callback URL ([`card_action`]) and the
//! scheduled card updater ([`card_updater`]).

pub mod card_action;
pub mod card_updater;
pub mod event_callback;
