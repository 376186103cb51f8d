//! Sorting a range's occurrences into what a plan creates, skips, or finds already there. Pure:
//! the caller reads the skips and the rounds from the database and writes what comes back.

use std::collections::BTreeMap;

use jiff::civil::Date;

/// A date the organizers chose not to hold a round on, and why (a holiday, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub date: Date,
    pub reason: String,
}

/// A round that already starts on a local date, by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing<Id> {
    pub date: Date,
    pub round: Id,
}

/// Each occurrence of the range in exactly one of `created`, `skipped` and `existing`, each in
/// date order. The last two lists are for the caller to show or ignore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<Id> {
    /// Occurrences with no round and no skip: the rounds to make.
    pub created: Vec<Date>,
    /// Occurrences skipped, with the skip's reason.
    pub skipped: Vec<Skip>,
    /// Occurrences on which a round already starts.
    pub existing: Vec<Existing<Id>>,
    /// Skips on no occurrence of the range (a mistyped date, or a rule that changed).
    pub unused_skips: Vec<Skip>,
    /// Rounds given on no occurrence (a round moved off the rule's date, or an extra one).
    /// They do not stop the rule's own date from being created: the issue's rule is "unless
    /// a round already starts on that local date", by date alone.
    pub off_rule: Vec<Existing<Id>>,
}

/// Classifies `occurrences` (from [`Rule::occurrences`](crate::schedule::recurrence::rule::Rule::occurrences)) against the skips and the
/// rounds that already exist (both as local dates in the series' zone).
///
/// A date with a round is `existing` even if it is also skipped: the plan never removes a
/// round, and calling it skipped would hide a round that will take place. When a date is
/// skipped twice, or has two rounds, the first one given is reported.
pub fn plan<Id: Clone>(occurrences: &[Date], skips: &[Skip], rounds: &[Existing<Id>]) -> Plan<Id> {
    let mut skip_on: BTreeMap<Date, &Skip> = BTreeMap::new();
    for skip in skips {
        skip_on.entry(skip.date).or_insert(skip);
    }
    let mut round_on: BTreeMap<Date, &Existing<Id>> = BTreeMap::new();
    for round in rounds {
        round_on.entry(round.date).or_insert(round);
    }

    let mut sorted = occurrences.to_vec();
    sorted.sort_unstable();
    sorted.dedup();

    let mut result = Plan {
        created: Vec::new(),
        skipped: Vec::new(),
        existing: Vec::new(),
        unused_skips: Vec::new(),
        off_rule: Vec::new(),
    };
    for &date in &sorted {
        if let Some(&round) = round_on.get(&date) {
            result.existing.push(round.clone());
        } else if let Some(&skip) = skip_on.get(&date) {
            result.skipped.push(skip.clone());
        } else {
            result.created.push(date);
        }
    }
    let is_occurrence = |date: &Date| sorted.binary_search(date).is_ok();
    result.unused_skips = skip_on
        .values()
        .filter(|skip| !is_occurrence(&skip.date))
        .map(|&skip| skip.clone())
        .collect();
    let mut off_rule: Vec<&Existing<Id>> = rounds
        .iter()
        .filter(|round| !is_occurrence(&round.date))
        .collect();
    off_rule.sort_by_key(|round| round.date);
    result.off_rule = off_rule.into_iter().cloned().collect();
    result
}
