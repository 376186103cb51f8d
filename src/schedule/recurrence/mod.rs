//! The series' recurrence, pure (no database, no HTTP): the RFC 5545 RRULE subset a series
//! carries (`FREQ=MONTHLY;BYDAY=3TH`), expanded into the local dates of its rounds in the
//! series' zone.
//!
//! - [`rule::Rule::parse`] reads the text and refuses anything outside the subset, naming the
//!   part ([`rule::RuleError`]); `Display` writes the canonical text back.
//! - [`rule::Rule::occurrences`] gives the local dates within a range, refusing a range or a
//!   result past [`expand::Limits`] ([`expand::ExpansionError`]).
//! - [`expand::local_start`] gives a date and a local time their instant in the zone.
//! - [`plan::plan`] sorts the occurrences into created, skipped and existing.
//!
//! # Why the expansion is written here rather than taken from the `rrule` crate
//!
//! The issue asks for a maintained crate, or a hand-written expansion with its reason. The
//! reasons, checked against rrule 0.14.0:
//!
//! - Its zone type is chrono-tz's, a required dependency. This service dropped chrono-tz for
//!   the tz database jiff bundles (see `platform::timezone`), and a second zone database could
//!   disagree with the first about a date's offset.
//! - Its open DST bugs are in exactly what this module must get right: #115 (Europe/London:
//!   duplicates and a missing occurrence when clocks go forward, missing ones when they go
//!   back; still there in 0.13) and #109 (daylight saving time ignored when traversing a set).
//!   Both show up with occurrences near a clock change; a round at noon may well escape
//!   them, but a series' start time is the organizers' to choose. Here a round is "a date,
//!   then the start time in the zone", so there is no instant to convert until the very end.
//! - Its iterator is unbounded, and its SECURITY.md warns of denial of service by panic,
//!   CPU and memory on untrusted rules (a rule that never matches runs to an internal cap of
//!   100,000 loops). The bounds the issue asks for would have to be built around it anyway.
//! - The subset is small: a period is a week or a month, and within a month BYDAY and
//!   BYSETPOS pick from at most 31 dates. Over jiff's civil dates that is about 150 lines,
//!   checked against python-dateutil's independent implementation for 39 rules
//!   (`scripts/contract/recurrence_check.py`, which `scripts/contract-test` runs against the
//!   plan's preview).
//!
//! Occurrences are computed on civil dates only, so no clock change can add, drop or move a
//! date; [`expand::local_start`] then resolves the start time in the zone once per date.

pub mod expand;
pub mod plan;
pub mod rule;
