//! The card-updater Lambda's handler (filled by its issue).
