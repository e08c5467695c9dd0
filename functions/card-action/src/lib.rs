//! The card-action Lambda's handler (filled by its issue).
