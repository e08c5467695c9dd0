//! The event-callback Lambda's handler (filled by its issue).
