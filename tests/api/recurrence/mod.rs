//! The recurrence module on its own (no application, no database): rule text read and refused,
//! rules expanded around the clock changes, and plans sorted. Its agreement with
//! python-dateutil is checked from outside, through the plan's preview, by
//! `scripts/contract/recurrence_check.py`.

mod expand;
mod parse;
mod plan;
