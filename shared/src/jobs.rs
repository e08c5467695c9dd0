//! Card-update jobs: what to deliver, when, how.
