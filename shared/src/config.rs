//! Env → typed config, validated at start.
