//! The in-memory adapter with the same semantics, for fast domain tests: `MemoryStore`.
