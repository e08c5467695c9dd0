//! An approver's other answers than a vote, and the bot's answer to silence: 转交 (transfer: the
//! approver's place in the waiting step goes to another person), 退回 (return for changes: the
//! request goes back to its requester's form, and filing it again starts the route over), and
//! escalation (reminders ran out: someone is added to the waiting step). Pure functions over
//! [`ApprovalData`]; the click (`click`) and the escalation job (`crate::deliver`) call them.

use super::definition::{Definition, Mode, MAX_TRANSFER_CANDIDATES, SINGLE_STEP};
use super::machine::{ApprovalData, AuditAction, AuditEntry, ReviewData};
use crate::store::EpochMillis;

/// Why a 转交 or 退回 changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverRefusal {
    /// The clicking approver has no vote due in the waiting step (voted, handed on, or the step
    /// or round moved on).
    NotDue,
    /// 转交 without a person, or to one who is not a candidate.
    NotACandidate,
}

/// Whether `approver` has a vote due in the waiting step `step` (`None`: a one-step request).
pub fn vote_due(data: &ApprovalData, step: Option<&str>, approver: &str) -> bool {
    if data.route.is_empty() {
        return data.approvers.iter().any(|a| a == approver);
    }
    super::route::awaits(&data.route, step, approver)
}

/// Whether `card`'s approver has a vote due on that card: it was sent in the request's current
/// round and their vote is due ([`vote_due`]). The buttons, the reminders and 待我审批 all ask this.
pub fn card_decides(data: &ApprovalData, card: &ReviewData) -> bool {
    card.round == data.round && vote_due(data, card.step.as_deref(), &card.approver)
}

/// The people the viewer of an approver's card may hand their vote to: the step's `transfer_to`
/// open_ids (a one-step request: the definition's), or with `{department: true}` the department
/// users looked up when the card was sent ([`ReviewData::candidates`]); never the requester nor
/// one of the step's approvers, at most [`MAX_TRANSFER_CANDIDATES`].
pub fn transfer_candidates(
    definition: &Definition,
    data: &ApprovalData,
    viewer: &ReviewData,
    requester: &str,
) -> Vec<String> {
    let Some(step_def) = definition.step(viewer.step.as_deref().unwrap_or(SINGLE_STEP)) else {
        return Vec::new();
    };
    let Some(transfer_to) = step_def.transfer_to else {
        return Vec::new();
    };
    let offered = match transfer_to.department {
        true => viewer.candidates.clone(),
        false => transfer_to.open_ids,
    };
    let approvers = current_approvers(data);
    let mut out: Vec<String> = Vec::new();
    for c in offered {
        if c != requester && !approvers.contains(&c) && !out.contains(&c) {
            out.push(c);
        }
    }
    out.truncate(MAX_TRANSFER_CANDIDATES);
    out
}

/// Whether `step` of `definition` offers its approvers' departments as 转交 candidates.
pub fn transfers_to_department(definition: &Definition, step: Option<&str>) -> bool {
    definition
        .step(step.unwrap_or(SINGLE_STEP))
        .and_then(|s| s.transfer_to)
        .is_some_and(|t| t.department)
}

/// The waiting step's approvers (a one-step request: the request's).
fn current_approvers(data: &ApprovalData) -> Vec<String> {
    match super::route::current(&data.route) {
        Some(i) => data.route[i].approvers.clone(),
        None => data.approvers.clone(),
    }
}

/// 转交: `from`'s place among the waiting step's approvers goes to `to` (same position; `from`
/// can no longer vote), recorded in the audit trail with the comment. `to` gets their card from
/// the notify job of [`ApprovalData::added`], which this counts up.
pub fn transfer(
    data: &mut ApprovalData,
    definition: &Definition,
    viewer: &ReviewData,
    requester: &str,
    to: &str,
    comment: Option<String>,
    at: EpochMillis,
) -> Result<(), HandoverRefusal> {
    let from = viewer.approver.as_str();
    if !vote_due(data, viewer.step.as_deref(), from) {
        return Err(HandoverRefusal::NotDue);
    }
    if !transfer_candidates(definition, data, viewer, requester)
        .iter()
        .any(|c| c == to)
    {
        return Err(HandoverRefusal::NotACandidate);
    }
    let swap = |list: &mut Vec<String>| {
        for a in list.iter_mut().filter(|a| a.as_str() == from) {
            *a = to.to_owned();
        }
    };
    if let Some(i) = super::route::current(&data.route) {
        swap(&mut data.route[i].approvers);
    }
    swap(&mut data.approvers);
    // Handed to someone sent a card of this step before (back and forth, or one Feishu refused):
    // the notify job of the change considers them again.
    data.notified.retain(|n| n != to);
    data.added += 1;
    data.audit.push(AuditEntry {
        to: vec![to.to_owned()],
        comment,
        ..AuditEntry::new(at, Some(from), AuditAction::Transferred)
    });
    Ok(())
}

/// 退回: recorded (with the comment) before the request's status goes back to the form. The
/// route stays as it stood (the cards show it) until the requester files again: [`restart`].
pub fn record_return(data: &mut ApprovalData, by: &str, comment: Option<String>, at: EpochMillis) {
    data.audit.push(AuditEntry {
        comment,
        ..AuditEntry::new(at, Some(by), AuditAction::Returned)
    });
}

/// Whether a form being filed is a returned request filed again (it was filed before).
pub fn is_resubmission(data: &ApprovalData) -> bool {
    data.audit.iter().any(|e| e.action == AuditAction::Returned)
}

/// Filing a returned request again: a new round. The first round's votes and approvers no longer
/// count (the route is started afresh by the caller, from the new values); every approver is
/// resolved and sent a card of the new round by the notify job of [`ApprovalData::added`].
pub fn restart(data: &mut ApprovalData, by: Option<&str>, at: EpochMillis) {
    if !data.route.is_empty() {
        data.previous_rounds.push(std::mem::take(&mut data.route));
    }
    data.round += 1;
    data.added += 1;
    data.approvers.clear();
    data.notified.clear();
    data.decided_by = None;
    data.decided_at = None;
    data.comment = None;
    data.audit
        .push(AuditEntry::new(at, by, AuditAction::Resubmitted));
}

/// The approvers of the waiting step who have not voted (a one-step request: every approver).
pub fn silent(data: &ApprovalData) -> Vec<String> {
    match super::route::current(&data.route) {
        Some(i) => {
            let step = &data.route[i];
            step.approvers
                .iter()
                .filter(|a| !step.votes.iter().any(|v| &v.by == *a))
                .cloned()
                .collect()
        }
        None if data.route.is_empty() => data.approvers.clone(),
        None => Vec::new(),
    }
}

/// Whom an escalation adds to the waiting step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscalationPlan {
    /// `{open_ids}`: these people, for every silent approver.
    Everyone(Vec<String>),
    /// `{leader: true}`: (silent approver, their leader), for each one whose leader was found.
    PerApprover(Vec<(String, String)>),
}

/// Escalation: the plan's people join the waiting step. In an `all` step they take the places
/// of the silent approvers they stand for (a silent approver without a leader found stays, and is
/// still awaited); in an `any` or `n_of` step (and a one-step request) they are added as voters
/// (an `n_of` step still needs N, or all of its approvers when it has fewer). Only approvers
/// silent now count: one who voted since keeps their vote and brings nobody. The requester and
/// anyone already an approver of the step are never added, and a step never grows past
/// [`crate::config::MAX_APPROVERS`] this way (one is added at least); `false` when nobody is
/// left to add (nothing recorded).
pub fn escalate(
    data: &mut ApprovalData,
    plan: &EscalationPlan,
    requester: &str,
    at: EpochMillis,
) -> bool {
    let silent = silent(data);
    let current = current_approvers(data);
    // (whom they stand for, who joins)
    let mut joins: Vec<(Vec<String>, String)> = Vec::new();
    let fresh = |t: &str| t != requester && !current.iter().any(|c| c == t);
    match plan {
        EscalationPlan::Everyone(targets) => {
            for t in targets {
                if fresh(t) && !joins.iter().any(|(_, j)| j == t) {
                    joins.push((silent.clone(), t.clone()));
                }
            }
        }
        EscalationPlan::PerApprover(pairs) => {
            for (approver, leader) in pairs {
                if !silent.contains(approver) || !fresh(leader) {
                    continue;
                }
                match joins.iter_mut().find(|(_, j)| j == leader) {
                    Some((stands_for, _)) => stands_for.push(approver.clone()),
                    None => joins.push((vec![approver.clone()], leader.clone())),
                }
            }
        }
    }
    let room = crate::config::MAX_APPROVERS
        .saturating_sub(current.len())
        .max(1);
    joins.truncate(room);
    if joins.is_empty() {
        return false;
    }
    let added: Vec<String> = joins.iter().map(|(_, j)| j.clone()).collect();
    let replaced: Vec<String> = joins.iter().flat_map(|(r, _)| r.clone()).collect();
    match super::route::current(&data.route) {
        Some(i) => {
            let step = &mut data.route[i];
            if step.mode == Mode::All {
                step.approvers.retain(|a| !replaced.contains(a));
            }
            step.approvers.extend(added.iter().cloned());
            data.approvers = step.approvers.clone();
        }
        None => data.approvers.extend(added.iter().cloned()),
    }
    data.added += 1;
    data.audit.push(AuditEntry {
        to: added,
        ..AuditEntry::new(at, None, AuditAction::Escalated)
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::definition::file;
    use crate::approval::route;

    fn definition() -> Definition {
        file::parse(
            "definitions:
  - id: expense
    name: 报销
    fields: [{name: amount, type: amount, label: 金额, required: true}]
    remind: {after: 1h, every: 2h, max: 2, then: {escalate: {open_ids: [ou_boss]}}}
    steps:
      - {id: manager, approvers: {open_ids: [ou_m1, ou_m2]}, mode: all, transfer_to: {open_ids: [ou_t1, ou_m2, ou_req]}}
      - {id: board, approvers: {open_ids: [ou_d1, ou_e1, ou_f1]}, mode: {n_of: 2}}
",
        )
        .unwrap()
        .definitions
        .remove(0)
    }

    fn filed() -> ApprovalData {
        let d = definition();
        let values = serde_json::json!({"amount": "10"});
        let mut data = ApprovalData {
            route: route::start(&d, values.as_object().unwrap()),
            ..ApprovalData::default()
        };
        data.route[0].approvers = vec!["ou_m1".into(), "ou_m2".into()];
        data.approvers = data.route[0].approvers.clone();
        data
    }

    #[test]
    fn the_file_shape_parses_transfer_to_and_remind() {
        let d = definition();
        let remind = d.remind.clone().unwrap();
        assert_eq!(
            (remind.after_secs, remind.every_secs, remind.max),
            (3600, 7200, 2)
        );
        assert_eq!(
            remind.escalate,
            Some(crate::approval::definition::Escalate::OpenIds {
                open_ids: vec!["ou_boss".into()]
            })
        );
        assert!(d.step("manager").unwrap().transfer_to.is_some());
        assert!(d.step("board").unwrap().transfer_to.is_none());
    }

    fn card(approver: &str) -> ReviewData {
        ReviewData {
            request_key: "msg:om_1".into(),
            approver: approver.into(),
            step: Some("manager".into()),
            cc: None,
            round: 0,
            candidates: Vec::new(),
        }
    }

    #[test]
    fn transfer_offers_only_candidates_outside_the_step_and_swaps_the_approver() {
        let d = definition();
        let mut data = filed();
        // ou_m2 is an approver of the step, ou_req the requester: only ou_t1 is offered.
        assert_eq!(
            transfer_candidates(&d, &data, &card("ou_m1"), "ou_req"),
            ["ou_t1"]
        );
        assert_eq!(
            transfer(&mut data, &d, &card("ou_m1"), "ou_req", "ou_x", None, 5),
            Err(HandoverRefusal::NotACandidate)
        );
        assert_eq!(
            transfer(&mut data, &d, &card("ou_zz"), "ou_req", "ou_t1", None, 5),
            Err(HandoverRefusal::NotDue)
        );
        transfer(
            &mut data,
            &d,
            &card("ou_m1"),
            "ou_req",
            "ou_t1",
            Some("休假中".into()),
            5,
        )
        .unwrap();
        assert_eq!(data.route[0].approvers, ["ou_t1", "ou_m2"]);
        assert_eq!(data.approvers, ["ou_t1", "ou_m2"]);
        assert_eq!(data.added, 1);
        let entry = data.audit.last().unwrap();
        assert_eq!(entry.action, AuditAction::Transferred);
        assert_eq!(
            (entry.by.as_deref(), entry.to.as_slice()),
            (Some("ou_m1"), &["ou_t1".to_owned()][..])
        );
        // The old approver has no vote any more; the new one has.
        assert!(!vote_due(&data, Some("manager"), "ou_m1"));
        assert!(vote_due(&data, Some("manager"), "ou_t1"));
        assert_eq!(
            route::vote(&mut data.route, "manager", "ou_m1", true, None, 6),
            route::Voted::NotCurrent
        );
    }

    #[test]
    fn escalation_replaces_silent_voters_in_all_and_adds_one_in_n_of() {
        let mut data = filed();
        route::vote(&mut data.route, "manager", "ou_m2", true, None, 1);
        let boss = EscalationPlan::Everyone(vec!["ou_boss".into()]);
        assert!(escalate(&mut data, &boss, "ou_req", 2));
        // all: ou_m1 was silent, the boss takes their place; ou_m2's vote stands.
        assert_eq!(data.route[0].approvers, ["ou_m2", "ou_boss"]);
        assert_eq!(
            route::vote(&mut data.route, "manager", "ou_boss", true, None, 3),
            route::Voted::StepApproved { next: Some(1) }
        );
        data.route[1].approvers = vec!["ou_d1".into(), "ou_e1".into(), "ou_f1".into()];
        assert!(escalate(&mut data, &boss, "ou_req", 4));
        assert_eq!(data.route[1].approvers.len(), 4);
        assert_eq!(route::needed(&data.route[1]), 2);
        // Nobody new: nothing recorded.
        let before = data.audit.len();
        let again = EscalationPlan::Everyone(vec!["ou_boss".into(), "ou_req".into()]);
        assert!(!escalate(&mut data, &again, "ou_req", 5));
        assert_eq!(data.audit.len(), before);
    }

    #[test]
    fn a_leader_stands_for_their_own_silent_approvers_only() {
        let mut data = filed();
        data.route[0].approvers = vec!["ou_m1".into(), "ou_m2".into(), "ou_m3".into()];
        route::vote(&mut data.route, "manager", "ou_m3", true, None, 1);
        // ou_m1's leader is found; ou_m2 has none; ou_m3 voted since the look-up.
        let plan = EscalationPlan::PerApprover(vec![
            ("ou_m1".into(), "ou_l1".into()),
            ("ou_m3".into(), "ou_l3".into()),
        ]);
        assert!(escalate(&mut data, &plan, "ou_req", 2));
        // all: ou_m1 is replaced by their leader; ou_m2 is still awaited; ou_m3's vote stands.
        assert_eq!(data.route[0].approvers, ["ou_m2", "ou_m3", "ou_l1"]);
    }

    #[test]
    fn a_restart_is_a_new_round_without_the_first_rounds_approvers() {
        let mut data = filed();
        route::vote(&mut data.route, "manager", "ou_m2", true, None, 1);
        record_return(&mut data, "ou_m1", Some("金额不对".into()), 2);
        assert!(is_resubmission(&data));
        restart(&mut data, Some("ou_req"), 3);
        assert_eq!((data.round, data.added), (1, 1));
        assert_eq!(data.previous_rounds.len(), 1);
        assert_eq!(
            data.previous_rounds[0][0].votes.len(),
            1,
            "kept for the record"
        );
        assert!(data.approvers.is_empty() && data.notified.is_empty());
    }
}
