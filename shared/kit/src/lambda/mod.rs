//! The Lambda glue: a function URL handler's runner ([`function_url`]), loading a function's
//! secrets ([`secrets`]) and its JSON logs ([`logging`]).

pub mod function_url;
pub mod logging;
pub mod secrets;
