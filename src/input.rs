//! Request input: JSON bodies and query strings, read field by field so that one answer names
//! every bad field (serde stops at the first one).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::{Map, Value};

use crate::db::DbConnection;
use crate::error::{ApiError, FieldError};
use crate::schema::{departments, rounds, speakers};

/// The id of a record, as a request body gives it.
#[derive(utoipa::ToSchema)]
#[schema(minimum = 1, maximum = 2147483647, format = Int32)]
#[allow(dead_code)] // documents the items of id arrays such as `department_ids`
pub struct Id(i32);

/// A record that a request body refers to by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefKind {
    Department,
    Speaker,
    Round,
}

#[derive(Debug, Clone)]
struct Reference {
    field: String,
    kind: RefKind,
    id: i32,
}

/// A parsed body whose references are still to be checked against the database.
#[derive(Debug)]
pub struct Checked<T> {
    value: T,
    errors: Vec<FieldError>,
    refs: Vec<Reference>,
}

impl<T> Checked<T> {
    /// Checks the references inside the write transaction (so that they cannot vanish before
    /// the write) and returns the value, or every error found, syntax and references together.
    pub fn verify(self, conn: &mut DbConnection) -> Result<T, ApiError> {
        let mut errors = self.errors;
        errors.extend(missing_references(conn, &self.refs)?);
        if errors.is_empty() {
            Ok(self.value)
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    /// For bodies that refer to nothing: the errors found by reading, if any.
    pub fn into_result(self) -> Result<T, ApiError> {
        debug_assert!(self.refs.is_empty());
        if self.errors.is_empty() {
            Ok(self.value)
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }

    pub fn add_error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }
}

fn missing_references(
    conn: &mut DbConnection,
    refs: &[Reference],
) -> Result<Vec<FieldError>, ApiError> {
    let mut by_kind: BTreeMap<RefKind, Vec<i32>> = BTreeMap::new();
    for r in refs {
        by_kind.entry(r.kind).or_default().push(r.id);
    }
    let mut found: BTreeMap<RefKind, Vec<i32>> = BTreeMap::new();
    for (kind, ids) in by_kind {
        let existing = match kind {
            RefKind::Department => departments::table
                .filter(departments::id.eq_any(&ids))
                .select(departments::id)
                .load::<i32>(conn)?,
            RefKind::Speaker => speakers::table
                .filter(speakers::id.eq_any(&ids))
                .select(speakers::id)
                .load::<i32>(conn)?,
            RefKind::Round => rounds::table
                .filter(rounds::id.eq_any(&ids))
                .select(rounds::id)
                .load::<i32>(conn)?,
        };
        found.insert(kind, existing);
    }
    Ok(refs
        .iter()
        .filter(|r| !found.get(&r.kind).is_some_and(|ids| ids.contains(&r.id)))
        .map(|r| {
            let what = match r.kind {
                RefKind::Department => "department",
                RefKind::Speaker => "speaker",
                RefKind::Round => "round",
            };
            FieldError::new(&r.field, format!("no {what} with id {}", r.id))
        })
        .collect())
}

/// Reads the fields of one JSON object, collecting an error for each bad one.
///
/// Getters return a placeholder after recording an error; the placeholder is never used,
/// because [`ObjectReader::finish`] hands back the errors with the value.
pub struct ObjectReader {
    /// Set when the body is not an object: its one error says it all.
    not_an_object: bool,
    prefix: String,
    fields: Map<String, Value>,
    errors: Vec<FieldError>,
    refs: Vec<Reference>,
}

impl ObjectReader {
    pub fn new(body: Value) -> Self {
        Self::nested(body, "")
    }

    fn nested(body: Value, prefix: &str) -> Self {
        let mut reader = ObjectReader {
            not_an_object: false,
            prefix: prefix.to_owned(),
            fields: Map::new(),
            errors: Vec::new(),
            refs: Vec::new(),
        };
        match body {
            Value::Object(fields) => reader.fields = fields,
            other => {
                reader.not_an_object = true;
                let field = if prefix.is_empty() { "(body)" } else { prefix };
                reader.errors.push(FieldError::new(
                    field,
                    format!("must be a JSON object, not {}", type_name(&other)),
                ));
            }
        }
        reader
    }

    fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        if self.not_an_object {
            return;
        }
        let path = self.path(field);
        self.errors.push(FieldError::new(path, message));
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn has_error_for(&self, field: &str) -> bool {
        let path = self.path(field);
        self.errors.iter().any(|e| e.field == path)
    }

    /// The field's value; `None` when absent or `null`.
    fn take(&mut self, field: &str) -> Option<Value> {
        match self.fields.remove(field) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value),
        }
    }

    /// Whether the body has the field (even as `null`); does not consume it.
    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    fn string(&mut self, field: &str, max_chars: usize) -> Option<String> {
        match self.take(field)? {
            Value::String(s) => {
                // Checked before trimming, as the schema's `maxLength` and `pattern` are.
                let chars = s.chars().count();
                if chars > max_chars {
                    self.error(
                        field,
                        format!("must be at most {max_chars} characters (got {chars})"),
                    );
                    None
                } else if s
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
                {
                    self.error(field, "must not contain control characters");
                    None
                } else {
                    Some(s.trim().to_owned())
                }
            }
            other => {
                self.error(
                    field,
                    format!("must be a string, not {}", type_name(&other)),
                );
                None
            }
        }
    }

    /// An optional text field; a blank string counts as absent.
    pub fn text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        self.string(field, max_chars).filter(|s| !s.is_empty())
    }

    /// A required text field with at least one non-blank character.
    pub fn required_text(&mut self, field: &str, max_chars: usize) -> String {
        let present = self.fields.get(field).is_some_and(|v| !v.is_null());
        match self.string(field, max_chars) {
            Some(s) if !s.is_empty() => s,
            Some(_) => {
                self.error(field, "must not be blank");
                String::new()
            }
            None => {
                if !present {
                    self.error(field, "is required");
                }
                String::new()
            }
        }
    }

    pub fn email(&mut self, field: &str) -> Option<String> {
        // Not `text`: a blank string is not an address; `null` clears the field.
        let email = self.string(field, 254)?;
        if email_address::EmailAddress::is_valid(&email) && email.contains('.') {
            Some(email)
        } else {
            self.error(field, "must be an email address such as name@example.org");
            None
        }
    }

    pub fn integer(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.take(field)?;
        match as_integer(&value) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(_) => {
                self.error(field, format!("must be between {min} and {max}"));
                None
            }
            None => {
                self.error(
                    field,
                    format!("must be an integer, not {}", type_name(&value)),
                );
                None
            }
        }
    }

    /// An optional id of another record; checked against the database by [`Checked::verify`].
    pub fn reference(&mut self, field: &str, kind: RefKind) -> Option<i32> {
        let id = self.integer(field, 1, i64::from(i32::MAX))? as i32;
        let path = self.path(field);
        self.refs.push(Reference {
            field: path,
            kind,
            id,
        });
        Some(id)
    }

    pub fn required_reference(&mut self, field: &str, kind: RefKind) -> Option<i32> {
        if self.fields.get(field).is_none_or(|v| v.is_null()) {
            self.error(field, "is required");
            self.fields.remove(field);
            return None;
        }
        self.reference(field, kind)
    }

    /// An optional array of distinct ids of other records.
    pub fn references(&mut self, field: &str, max_items: usize, kind: RefKind) -> Vec<i32> {
        let items = self.array(field, max_items);
        let mut ids: Vec<i32> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let item_field = format!("{field}[{i}]");
            match as_integer(&item)
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| *n >= 1)
            {
                Some(id) if ids.contains(&id) => {
                    self.error(&item_field, format!("{id} is listed twice"));
                }
                Some(id) => {
                    ids.push(id);
                    let path = self.path(&item_field);
                    self.refs.push(Reference {
                        field: path,
                        kind,
                        id,
                    });
                }
                None => self.error(&item_field, "must be an integer id of at least 1"),
            }
        }
        ids
    }

    /// A required RFC 3339 timestamp with any offset, returned in UTC.
    pub fn timestamp(&mut self, field: &str) -> Option<DateTime<Utc>> {
        let Some(value) = self.take(field) else {
            self.error(field, "is required");
            return None;
        };
        match value.as_str().map(parse_timestamp) {
            // In UTC the year must still have four digits, or the answer is not RFC 3339.
            Some(Some(t)) if (0..=9999).contains(&t.year()) => Some(t),
            Some(Some(_)) => {
                self.error(field, "must be between years 0000 and 9999 in UTC");
                None
            }
            _ => {
                self.error(
                    field,
                    "must be an RFC 3339 date-time with an offset, such as 2019-04-25T12:00:00-04:00",
                );
                None
            }
        }
    }

    /// One of `allowed`; `default` when absent.
    pub fn choice(
        &mut self,
        field: &str,
        allowed: &[&'static str],
        default: Option<&'static str>,
    ) -> Option<&'static str> {
        if self.fields.get(field).is_some_and(Value::is_null) && default.is_some() {
            self.fields.remove(field);
            self.error(
                field,
                format!("must be one of: {} (not null)", allowed.join(", ")),
            );
            return None;
        }
        let Some(value) = self.take(field) else {
            if default.is_none() {
                self.error(
                    field,
                    format!("is required (one of: {})", allowed.join(", ")),
                );
            }
            return default;
        };
        match allowed.iter().find(|a| value.as_str() == Some(**a)) {
            Some(choice) => Some(*choice),
            None => {
                self.error(field, format!("must be one of: {}", allowed.join(", ")));
                None
            }
        }
    }

    /// An optional array (absent is empty; `null` is an error), at most `max_items` long.
    pub fn array(&mut self, field: &str, max_items: usize) -> Vec<Value> {
        match self.fields.remove(field) {
            None => Vec::new(),
            Some(Value::Null) => {
                self.error(field, "must be an array, not null");
                Vec::new()
            }
            Some(Value::Array(items)) if items.len() <= max_items => items,
            Some(Value::Array(items)) => {
                self.error(
                    field,
                    format!("must have at most {max_items} items (got {})", items.len()),
                );
                Vec::new()
            }
            Some(other) => {
                self.error(
                    field,
                    format!("must be an array, not {}", type_name(&other)),
                );
                Vec::new()
            }
        }
    }

    /// Reads an array of objects, each with a reader of its own whose errors join this one's.
    pub fn objects<T>(
        &mut self,
        field: &str,
        max_items: usize,
        mut read: impl FnMut(&mut ObjectReader) -> T,
    ) -> Vec<T> {
        let items = self.array(field, max_items);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let mut child = ObjectReader::nested(item, &format!("{}[{i}]", self.path(field)));
            let value = if child.has_errors() {
                None
            } else {
                Some(read(&mut child))
            };
            child.reject_unknown();
            self.errors.append(&mut child.errors);
            self.refs.append(&mut child.refs);
            if let Some(value) = value {
                out.push(value);
            }
        }
        out
    }

    /// Any field left unread is not part of the input schema.
    fn reject_unknown(&mut self) {
        let unknown: Vec<String> = self.fields.keys().cloned().collect();
        for field in unknown {
            self.error(&field, "is not a field of this request body");
        }
        self.fields.clear();
    }

    /// Ends reading: the remaining fields are reported as unknown.
    pub fn finish<T>(mut self, value: T) -> Checked<T> {
        self.reject_unknown();
        Checked {
            value,
            errors: self.errors,
            refs: self.refs,
        }
    }
}

/// An integer as JSON Schema sees one: `7` and `7.0` alike.
fn as_integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64)
            .map(|f| f as i64)
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// RFC 3339 with any offset, to UTC at the database's precision (microseconds).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
}

/// Applies a JSON merge patch (RFC 7386) to the current representation of a record.
///
/// A member the record does not have is kept even when it is `null` (which merging would
/// drop), so that reading the result reports it with every other bad field: otherwise
/// `{"nmae": null}` would succeed as a no-op.
pub fn merge_patch(current: &mut Value, patch: &Value) {
    let unknown: Vec<String> = match (&*current, patch) {
        (Value::Object(fields), Value::Object(members)) => members
            .iter()
            .filter(|(k, v)| v.is_null() && !fields.contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    json_patch::merge(current, patch);
    if let Value::Object(fields) = current {
        for k in unknown {
            fields.insert(k, Value::Null);
        }
    }
}

/// Reads a query string; unknown and repeated parameters are errors, so a typo such as
/// `?departmnet_id=3` is not silently ignored.
pub struct QueryReader {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl QueryReader {
    pub fn new(query_string: &str) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string)
            .map_err(|e| ApiError::BadRequest(format!("the query string is malformed: {e}")))?;
        Ok(QueryReader {
            pairs,
            errors: Vec::new(),
        })
    }

    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, message));
    }

    /// The parameter's value; `None` when absent. An empty value (`?to=`) is returned, so
    /// that typed parameters reject it as the schema does.
    pub fn get(&mut self, name: &str) -> Option<String> {
        let mut values: Vec<String> = Vec::new();
        self.pairs.retain(|(k, v)| {
            if k == name {
                values.push(v.clone());
                false
            } else {
                true
            }
        });
        if values.len() > 1 {
            self.error(name, "must be given at most once");
            return None;
        }
        values.pop()
    }

    pub fn integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let raw = self.get(name)?;
        match raw.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(name, format!("must be an integer between {min} and {max}"));
                None
            }
        }
    }

    pub fn id(&mut self, name: &str) -> Option<i32> {
        self.integer(name, 1, i64::from(i32::MAX)).map(|n| n as i32)
    }

    pub fn timestamp(&mut self, name: &str) -> Option<DateTime<Utc>> {
        let raw = self.get(name)?;
        let parsed = parse_timestamp(&raw);
        if parsed.is_none() {
            self.error(
                name,
                "must be an RFC 3339 date-time such as 2019-01-01T00:00:00Z",
            );
        }
        parsed
    }

    pub fn choice(&mut self, name: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let raw = self.get(name)?;
        let found = allowed.iter().find(|a| **a == raw).copied();
        if found.is_none() {
            self.error(name, format!("must be one of: {}", allowed.join(", ")));
        }
        found
    }

    /// Free text; empty counts as absent (the schema allows the empty string).
    pub fn text(&mut self, name: &str, max_chars: usize) -> Option<String> {
        let raw = self.get(name).filter(|v| !v.is_empty())?;
        if raw.chars().count() > max_chars {
            self.error(name, format!("must be at most {max_chars} characters"));
            return None;
        }
        if raw.chars().any(char::is_control) {
            self.error(name, "must not contain control characters");
            return None;
        }
        Some(raw)
    }

    pub fn finish(mut self) -> Result<(), ApiError> {
        let unknown: Vec<String> = self.pairs.iter().map(|(k, _)| k.clone()).collect();
        for name in unknown {
            if !self.errors.iter().any(|e| e.field == name) {
                self.error(&name, "is not a parameter of this operation");
            }
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidQuery(self.errors))
        }
    }
}
