//! The domain: commands, actions, the approval state machine.
