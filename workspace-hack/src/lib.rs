//! No code: this crate only turns on one feature set for shared dependencies (see its Cargo.toml).
