//! The domain: commands, card actions, the approval state machine, every transition (submit on a
//! click; the simulated decision and expiry when their time comes), which card change each makes,
//! and what each card looks like.
//!
//! Pure functions over the store's item types: the functions' handlers and the jobs call them
//! between the store and Feishu; this module never calls either, and imports nothing that
//! delivers (`jobs`, `deliver`).
//!
//! Inside, each file depends only on those listed before it: `machine` (statuses, events, the
//! request's data) → `request` (form validation) → `action` (button values) → `views` (cards, toasts, texts) → `command` (text routing) →
//! `scheduled` (timed transitions, the CardKit walk) → `click` (the click transition) → `followup`
//! (notify, remind, refresh: the follow-ups of a filed request).

mod action;
mod click;
mod command;
pub mod definition;
pub mod followup;
pub mod handover;
mod machine;
mod request;
pub mod route;
mod scheduled;
pub mod views;

pub use action::{parse_action, ActionError, ApprovalAction};
pub use click::{
    card_key, decide_click, decide_review_click, new_card_state, new_private_form_state,
    new_review_state, no_approver_step, requests_list, reviews_list, scheduled_for_new_card,
    step_notify, tenant_of, Click, ClickDecision, SentCard, POST_ANSWER_DELAY_MS,
};
pub use command::{normalize_text, parse_command, Command, CommandReply};
pub use machine::{
    status_of, ApprovalData, ApprovalEvent, ApprovalStatus, AuditAction, AuditEntry, CcKind,
    DomainError, LeaveType, NoApprover, Refusal, RequestForm, RequestKind, ReviewData, Stage,
    StepOutcome, StepState, Vote, CARD_KIND, REVIEW_KIND,
};
pub use request::{fields, parse_comment, parse_form, FormProblem, MAX_REASON_CHARS};
pub use scheduled::{
    approval_walk, on_timer, waiting_step, CardChange, CardStep, Followup, Scheduled, Timer,
    ONE_STEP,
};
pub use views::{format_local, render, render_card, render_state};

/// Reads and checks a definitions file (YAML or JSON): the schema ([`definition::file::parse`],
/// every problem with its line), then that each definition's cards fit Feishu's limits at their
/// largest ([`views::check_fits`]; such a problem names the definition, line 0).
pub fn load_definitions(
    text: &str,
) -> Result<definition::DefinitionSet, Vec<definition::file::Problem>> {
    let set = definition::file::parse(text)?;
    let problems: Vec<_> = set
        .definitions
        .iter()
        .filter_map(|d| {
            views::check_fits(d)
                .err()
                .map(|why| definition::file::Problem {
                    line: 0,
                    column: 0,
                    message: format!("definition `{}`: {why}", d.id),
                })
        })
        .collect();
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(problems)
    }
}
