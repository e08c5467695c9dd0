//! A routed request's steps: which run (a step whose `when` does not hold for the filed values is
//! skipped), how a vote decides a step by its mode, and which step comes next. Pure functions over
//! [`StepState`]s; the click (`click`) and the notify job (`crate::deliver`) call them.

use serde_json::{Map, Value};

use super::definition::{Definition, Mode};
use super::machine::{StepOutcome, StepState, Vote};
use crate::store::EpochMillis;

/// The route a request filed with `values` takes: every step of `definition`, a step whose
/// condition does not hold skipped, the first that runs current. Empty for a definition without
/// `steps` (a one-step request keeps its decision on the request itself).
pub fn start(definition: &Definition, values: &Map<String, Value>) -> Vec<StepState> {
    if definition.steps.is_empty() {
        return Vec::new();
    }
    let mut route: Vec<StepState> = definition
        .steps
        .iter()
        .map(|step| StepState {
            id: step.id.clone(),
            mode: step.mode,
            outcome: match &step.when {
                Some(condition) if !condition.holds(values) => StepOutcome::Skipped,
                _ => StepOutcome::Upcoming,
            },
            approvers: Vec::new(),
            votes: Vec::new(),
            automatic: false,
        })
        .collect();
    if let Some(first) = route
        .iter_mut()
        .find(|s| s.outcome == StepOutcome::Upcoming)
    {
        first.outcome = StepOutcome::Waiting;
    }
    route
}

/// The current step's index, if one waits.
pub fn current(route: &[StepState]) -> Option<usize> {
    route.iter().position(|s| s.outcome == StepOutcome::Waiting)
}

/// Approvals a step needs: all of its approvers, one, or N (at most as many as it has: the
/// requester is never among them, which may leave fewer than the definition names).
pub fn needed(step: &StepState) -> usize {
    let n = step.approvers.len();
    match step.mode {
        Mode::Any => 1.min(n),
        Mode::All => n,
        Mode::NOf(k) => (k as usize).min(n),
    }
}

/// What a vote did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voted {
    /// Recorded; the step still waits for more.
    Recorded,
    /// The step is approved and `next` is now current (`None`: the route is done: approved).
    StepApproved { next: Option<usize> },
    /// The step is rejected: the request is rejected.
    Rejected,
    /// This approver voted in this step before: nothing changes.
    AlreadyVoted,
    /// Not an approver of the current step (or no step waits): nothing changes.
    NotCurrent,
}

/// Records `by`'s vote in the step `step_id` and decides the step by its mode: `any`, the first
/// approval (any rejection ends the request); `all`, every approval (one rejection ends it);
/// `n_of`, N approvals (it ends when too many rejected for N to be reached). A step decided
/// makes the next one that runs current; the steps after a rejection are cancelled.
pub fn vote(
    route: &mut [StepState],
    step_id: &str,
    by: &str,
    approve: bool,
    comment: Option<String>,
    at: EpochMillis,
) -> Voted {
    let Some(i) = current(route).filter(|i| route[*i].id == step_id) else {
        return Voted::NotCurrent;
    };
    let step = &mut route[i];
    if !step.approvers.iter().any(|a| a == by) {
        return Voted::NotCurrent;
    }
    if step.votes.iter().any(|v| v.by == by) {
        return Voted::AlreadyVoted;
    }
    step.votes.push(Vote {
        by: by.to_owned(),
        approve,
        comment,
        at,
    });
    let approvals = step.votes.iter().filter(|v| v.approve).count();
    let rejections = step.votes.len() - approvals;
    let needed = needed(step);
    let can_still_pass = step.approvers.len() - rejections >= needed;
    let rejected = match step.mode {
        Mode::Any | Mode::All => rejections > 0,
        Mode::NOf(_) => !can_still_pass,
    };
    if rejected {
        step.outcome = StepOutcome::Rejected;
        cancel_rest(route);
        return Voted::Rejected;
    }
    if approvals >= needed {
        step.outcome = StepOutcome::Approved;
        return Voted::StepApproved {
            next: advance(route),
        };
    }
    Voted::Recorded
}

/// The current step decided without a vote (`APPROVAL_FALLBACK=simulated`, nobody found to
/// decide it): approved automatically, labelled; the next step becomes current.
pub fn approve_automatically(route: &mut [StepState]) -> Option<usize> {
    let i = current(route)?;
    route[i].outcome = StepOutcome::Approved;
    route[i].automatic = true;
    advance(route)
}

/// Makes the next upcoming step current; `None` when none is left.
fn advance(route: &mut [StepState]) -> Option<usize> {
    let next = route
        .iter()
        .position(|s| s.outcome == StepOutcome::Upcoming)?;
    route[next].outcome = StepOutcome::Waiting;
    Some(next)
}

/// The request ended (rejected, withdrawn, expired, nobody to decide): the steps not decided are
/// cancelled.
pub fn cancel_rest(route: &mut [StepState]) {
    for step in route.iter_mut() {
        if matches!(step.outcome, StepOutcome::Upcoming | StepOutcome::Waiting) {
            step.outcome = StepOutcome::Cancelled;
        }
    }
}

/// Whether an approver of `step_id` still has to vote (a reminder goes to them).
pub fn awaits(route: &[StepState], step_id: Option<&str>, approver: &str) -> bool {
    let Some(i) = current(route) else {
        return route.is_empty();
    };
    let step = &route[i];
    step_id == Some(step.id.as_str())
        && step.approvers.iter().any(|a| a == approver)
        && !step.votes.iter().any(|v| v.by == approver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition() -> Definition {
        super::super::definition::file::parse(
            "definitions:
  - id: expense
    name: 报销
    fields: [{name: amount, type: amount, label: 金额, required: true}]
    steps:
      - {id: manager, approvers: {leader: true}, mode: any}
      - {id: finance, approvers: {open_ids: [ou_a1, ou_b1, ou_c1]}, mode: all, when: \"amount > 5000\"}
      - {id: board, approvers: {open_ids: [ou_d1, ou_e1, ou_f1]}, mode: {n_of: 2}}
",
        )
        .unwrap()
        .definitions
        .remove(0)
    }

    fn started(amount: &str) -> Vec<StepState> {
        let values = json!({ "amount": amount });
        let mut route = start(&definition(), values.as_object().unwrap());
        route[0].approvers = vec!["ou_m".into()];
        route[1].approvers = vec!["ou_a".into(), "ou_b".into(), "ou_c".into()];
        route[2].approvers = vec!["ou_d".into(), "ou_e".into(), "ou_f".into()];
        route
    }

    fn outcomes(route: &[StepState]) -> Vec<StepOutcome> {
        route.iter().map(|s| s.outcome).collect()
    }

    #[test]
    fn a_false_condition_skips_its_step() {
        use StepOutcome::*;
        assert_eq!(outcomes(&started("100")), [Waiting, Skipped, Upcoming]);
        assert_eq!(outcomes(&started("9000")), [Waiting, Upcoming, Upcoming]);
    }

    #[test]
    fn each_mode_decides_its_step() {
        use StepOutcome::*;
        let mut route = started("9000");
        assert_eq!(
            vote(&mut route, "manager", "ou_x", true, None, 1),
            Voted::NotCurrent
        );
        assert_eq!(
            vote(&mut route, "finance", "ou_a", true, None, 1),
            Voted::NotCurrent
        );
        assert_eq!(
            vote(&mut route, "manager", "ou_m", true, None, 1),
            Voted::StepApproved { next: Some(1) }
        );
        // all: two approvals wait for the third; a repeat vote changes nothing.
        assert_eq!(
            vote(&mut route, "finance", "ou_a", true, None, 2),
            Voted::Recorded
        );
        assert_eq!(
            vote(&mut route, "finance", "ou_a", false, None, 2),
            Voted::AlreadyVoted
        );
        assert_eq!(
            vote(&mut route, "finance", "ou_b", true, None, 3),
            Voted::Recorded
        );
        assert_eq!(
            vote(&mut route, "finance", "ou_c", true, None, 4),
            Voted::StepApproved { next: Some(2) }
        );
        // n_of 2: the second approval ends it; the third approver's vote comes too late.
        assert_eq!(
            vote(&mut route, "board", "ou_d", true, None, 5),
            Voted::Recorded
        );
        assert_eq!(
            vote(&mut route, "board", "ou_e", true, None, 6),
            Voted::StepApproved { next: None }
        );
        assert_eq!(
            vote(&mut route, "board", "ou_f", true, None, 7),
            Voted::NotCurrent
        );
        assert_eq!(outcomes(&route), [Approved, Approved, Approved]);
    }

    #[test]
    fn a_rejection_ends_the_route_by_mode() {
        use StepOutcome::*;
        let mut all = started("9000");
        vote(&mut all, "manager", "ou_m", true, None, 1);
        vote(&mut all, "finance", "ou_a", true, None, 2);
        assert_eq!(
            vote(&mut all, "finance", "ou_b", false, None, 3),
            Voted::Rejected
        );
        assert_eq!(outcomes(&all), [Approved, Rejected, Cancelled]);
        // n_of 2 of 3: one rejection leaves two that can still approve; a second cannot.
        let mut board = started("100");
        assert_eq!(
            vote(&mut board, "manager", "ou_m", true, None, 1),
            Voted::StepApproved { next: Some(2) }
        );
        assert_eq!(
            vote(&mut board, "board", "ou_d", false, None, 2),
            Voted::Recorded
        );
        assert_eq!(
            vote(&mut board, "board", "ou_e", false, None, 3),
            Voted::Rejected
        );
        // any: the first rejection ends it.
        let mut any = started("100");
        assert_eq!(
            vote(&mut any, "manager", "ou_m", false, None, 1),
            Voted::Rejected
        );
        assert_eq!(outcomes(&any), [Rejected, Skipped, Cancelled]);
    }

    #[test]
    fn fewer_approvers_than_n_lower_the_bar_and_automatic_steps_are_labelled() {
        let mut route = started("100");
        route[2].approvers = vec!["ou_d".into()];
        assert_eq!(needed(&route[2]), 1);
        assert_eq!(approve_automatically(&mut route), Some(2));
        assert!(route[0].automatic);
        assert!(awaits(&route, Some("board"), "ou_d"));
        assert!(!awaits(&route, Some("manager"), "ou_d"));
    }
}
