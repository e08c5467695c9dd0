//! Feishu's documented limits on updating a sent card (`../shared/feishu/cards-and-cardkit.md`:
//! delayed update, message PATCH, CardKit), in one place for the domain and the jobs.

/// A card callback's update token is valid 30 minutes…
pub const UPDATE_TOKEN_TTL_MS: i64 = 30 * 60 * 1000;
/// …for 2 delayed updates (then 300040; expired: 300030).
pub const UPDATE_TOKEN_MAX_USES: u32 = 2;
/// `PATCH im/v1/messages` (230031) and CardKit entities (200750) stop 14 days after the send.
pub const UPDATE_WINDOW_MS: i64 = 14 * 24 * 3600 * 1000;
/// CardKit allows 10 writes/s per card entity; calls on one card are spaced by this much.
pub const CARDKIT_MIN_INTERVAL_MS: u64 = 110;
