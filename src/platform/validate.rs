//! The OpenAPI document is the validator. Request bodies are checked against the component
//! schemas of the served document, query strings against each operation's parameters, with the
//! `jsonschema` crate; each schema is compiled once per process, when a request first needs it
//! (most operations of a replica are never called, and a compiled schema is held for good).
//!
//! A body goes through three steps, and one answer names every bad field of all three:
//! 1. the schema: each error becomes `{field, message}` with a path such as
//!    `speakers[0].speaker_id` and a message a person can act on;
//! 2. the rules JSON Schema cannot state, written in plain Rust on the fields that passed
//!    ([`Input::rules`], reading them through [`Doc`]);
//! 3. references: ids marked in the schema as naming another record
//!    ([`crate::platform::fields::REFERENCES_KEYWORD`]) are checked against the database inside the write
//!    transaction ([`Checked::verify`]).
//!
//! Only then is the body deserialized (serde) into its typed struct, which cannot fail for a
//! reason the schema knows.
//!
//! A component with a `discriminator` (a union such as the feedback body) is checked against
//! the variant its discriminating property names, as OpenAPI tools read it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpRequest};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::JsonType;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::platform::db::DbConnection;
use crate::platform::error::{ApiError, FieldError};
use crate::platform::fields::{
    pattern_message, Email, LocalDate, RefKind, Timestamp, REFERENCES_KEYWORD,
};

/// The most errors one answer lists (the schema bounds `errors` for clients).
pub const MAX_ERRORS: usize = 100;

/// A request body type: its schema (a component of the document) and its rules.
pub trait Input: DeserializeOwned + utoipa::ToSchema + Send + 'static {
    /// The rules JSON Schema cannot state, on the fields that passed the schema.
    fn rules(_doc: &Doc<'_>) -> Vec<FieldError> {
        Vec::new()
    }
}

/// A body that passed the schema and the rules, whose references are still to be checked
/// against the database.
#[derive(Debug, Clone)]
pub struct Checked<T> {
    value: Option<T>,
    errors: Vec<FieldError>,
    references: Vec<Reference>,
    /// Why the body could not be checked at all: a defect of the service (a schema of the
    /// document that does not compile), answered as 500, not as the client's fault.
    defect: Option<String>,
}

/// An id in a body that must name an existing record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub field: String,
    pub kind: RefKind,
    pub id: i32,
}

impl<T> Checked<T> {
    /// Adds an error found outside the body (a body that disagrees with the path, say).
    pub fn add_error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
        self.value = None;
    }

    /// Whether the body is refused whatever its references turn out to be.
    pub fn is_refused(&self) -> bool {
        !self.errors.is_empty() || self.value.is_none() || self.defect.is_some()
    }

    /// The value, if the body passed its schema and rules (its references not looked up yet).
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref().filter(|_| self.errors.is_empty())
    }

    /// The references to check; see [`Checked::finish`].
    pub fn references(&self) -> &[Reference] {
        &self.references
    }

    /// The value, or every error: those of the body and those of its references, which the
    /// caller has looked up (`missing`: the references that name no record).
    pub fn finish(self, missing: &[Reference]) -> Result<T, ApiError> {
        if let Some(defect) = self.defect {
            return Err(ApiError::Internal(defect));
        }
        let mut errors = self.errors;
        errors.extend(missing.iter().map(|r| {
            FieldError::new(&r.field, format!("no {} with id {}", r.kind.as_str(), r.id))
        }));
        match self.value {
            Some(value) if errors.is_empty() => Ok(value),
            _ => {
                errors.truncate(MAX_ERRORS);
                Err(ApiError::Validation(errors))
            }
        }
    }

    fn defect(cause: String) -> Checked<T> {
        Checked {
            value: None,
            errors: Vec::new(),
            references: Vec::new(),
            defect: Some(cause),
        }
    }

    /// For bodies that refer to nothing.
    pub fn into_result(self) -> Result<T, ApiError> {
        self.finish(&[])
    }

    /// The same check, of the value made into another type: a body completed with what the
    /// request's path says (the initiative a new PDSA cycle belongs to, say).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Checked<U> {
        Checked {
            value: self.value.map(f),
            errors: self.errors,
            references: self.references,
            defect: self.defect,
        }
    }
}

/// The fields of a body as the rules read them: a field that failed the schema reads as absent,
/// so a rule never reports a field twice.
pub struct Doc<'a> {
    value: &'a Value,
    /// The fields the schema found wrong.
    errors: HashSet<&'a str>,
}

impl Doc<'_> {
    fn has_error_at(&self, path: &str) -> bool {
        covered(&self.errors, path)
    }

    /// The field, if present and valid.
    pub fn get<T: DeserializeOwned>(&self, field: &str) -> Option<T> {
        let value = self.value.get(field)?;
        if value.is_null() || self.has_error_at(field) {
            return None;
        }
        serde_json::from_value(value.clone()).ok()
    }

    /// The items of an array field, each `None` if it is invalid; empty if the array is.
    pub fn items<T: DeserializeOwned>(&self, field: &str) -> Vec<Option<T>> {
        let Some(Value::Array(items)) = self.value.get(field) else {
            return Vec::new();
        };
        if self.errors.contains(field) {
            return Vec::new();
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                if self.has_error_at(&format!("{field}[{i}]")) {
                    None
                } else {
                    serde_json::from_value(item.clone()).ok()
                }
            })
            .collect()
    }
}

/// `path` and the fields that contain it: `speakers[1].speaker_id`, `speakers[1]`, `speakers`.
fn containing(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .filter(|&(_, c)| c == '.' || c == '[')
        .map(|(i, _)| &path[..i])
        .chain(std::iter::once(path))
}

/// Whether an error at `error_field` is about `path` or something that contains it.
#[cfg(test)]
fn covers(error_field: &str, path: &str) -> bool {
    containing(path).any(|field| field == error_field)
}

/// Whether one of the errors at `error_fields` is about `path` or something that contains it
/// (a set, so that checking every item of a long array against every error stays linear).
fn covered(error_fields: &HashSet<&str>, path: &str) -> bool {
    containing(path).any(|field| error_fields.contains(field))
}

/// One compiled body schema.
struct Plain {
    validator: jsonschema::Validator,
    /// The component's schema, for the order of its fields and its references.
    schema: Value,
    /// The discriminator value when this is a variant of a union, for messages.
    variant: Option<String>,
}

enum BodySchema {
    Plain(Plain),
    Union {
        property: String,
        variants: Vec<(String, Plain)>,
        /// Every field of every variant, in order: the order errors are listed in.
        fields: Vec<String>,
    },
}

/// One operation's query parameters, as an object schema.
struct QuerySchema {
    validator: jsonschema::Validator,
    schema: Value,
    /// Each parameter and the JSON type its text is read as.
    params: Vec<(String, Option<&'static str>)>,
}

/// A schema compiled on first use (or why it could not be), kept for the process.
type Compiled<T> = OnceLock<Result<T, String>>;

/// Every validator of the document, each compiled on first use and kept for the process.
pub struct Validators {
    /// The document's component schemas, which every validator refers into.
    schemas: Map<String, Value>,
    /// The body schema of each `...Input` component, by name.
    bodies: HashMap<String, Compiled<BodySchema>>,
    /// Each operation's parameters, and their query schema once compiled.
    queries: HashMap<(Method, String), (Value, Compiled<QuerySchema>)>,
    /// How each kind of reference is looked up, from the module that owns its records.
    references: Vec<(RefKind, ExistingIds)>,
}

/// Which of `ids` name a record of one kind: provided by the module that owns those records
/// (see [`crate::existing_ids!`]).
pub type ExistingIds = fn(&mut DbConnection, &[i32]) -> Result<Vec<i32>, ApiError>;

/// The components `schema` refers to, directly or not, without what only documents them
/// (descriptions, examples): all a validator needs, and far less memory than the whole document
/// compiled again for every validator.
fn reachable(schemas: &Map<String, Value>, schema: &Value) -> Value {
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    out.push(name.to_owned());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut kept = Map::new();
    let mut pending = Vec::new();
    refs(schema, &mut pending);
    while let Some(name) = pending.pop() {
        if kept.contains_key(&name) {
            continue;
        }
        if let Some(component) = schemas.get(&name) {
            let mut component = without_annotations(component);
            nullable_refs(&mut component);
            refs(&component, &mut pending);
            kept.insert(name, component);
        }
    }
    serde_json::json!({ "schemas": kept })
}

/// A schema without the keywords that only annotate (they validate nothing).
fn without_annotations(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "description" | "example" | "examples" | "title")
                })
                .map(|(k, v)| {
                    // `properties` maps names to schemas: a property may be called `title`.
                    let v = if k == "properties" {
                        match v {
                            Value::Object(props) => Value::Object(
                                props
                                    .iter()
                                    .map(|(n, p)| (n.clone(), without_annotations(p)))
                                    .collect(),
                            ),
                            other => other.clone(),
                        }
                    } else {
                        without_annotations(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_annotations).collect()),
        other => other.clone(),
    }
}

/// A nullable object (`oneOf: [{$ref: X}, {type: null}]`, as utoipa writes `Option<X>`) made
/// `if not null then X` for the validator only: a `oneOf` answers one error at the field
/// (`owner`), the `then` the errors of its members (`owner.email`). The document keeps its
/// form; what it accepts is the same.
fn nullable_refs(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let branch = match map.get("oneOf") {
                Some(Value::Array(branches)) if branches.len() == 2 => {
                    let null = serde_json::json!({"type": "null"});
                    let other = branches.iter().find(|b| **b != null);
                    let has_null = branches.contains(&null);
                    other
                        .filter(|b| has_null && b.get("$ref").is_some())
                        .cloned()
                }
                _ => None,
            };
            if let Some(branch) = branch {
                map.remove("oneOf");
                map.insert("if".to_owned(), serde_json::json!({"type": "null"}));
                map.insert("else".to_owned(), branch);
            }
            map.values_mut().for_each(nullable_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_refs),
        _ => {}
    }
}

fn compile(schemas: &Map<String, Value>, schema: Value) -> Result<jsonschema::Validator, String> {
    let mut document = without_annotations(&schema);
    nullable_refs(&mut document);
    let components = reachable(schemas, &document);
    if let Value::Object(map) = &mut document {
        map.insert("components".to_owned(), components);
        map.insert(
            "$schema".to_owned(),
            Value::from("https://json-schema.org/draft/2020-12/schema"),
        );
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        // The checks behind the formats, declared with the types that use them.
        .with_format("email", Email::is_valid)
        .with_format("date-time", Timestamp::is_valid)
        .with_format("date", LocalDate::is_valid)
        .build(&document)
        .map_err(|e| format!("cannot compile a schema of the OpenAPI document: {e}"))
}

fn component_ref(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

impl Validators {
    /// The validators of `document`'s request bodies and query strings. Nothing is compiled
    /// yet: each schema is compiled when a request first needs it ([`Validators::compile_all`]
    /// compiles them all, for the test that every one compiles).
    pub fn from_document(mut document: Value) -> Validators {
        // Taken, not copied: the components are most of what the process keeps of the document.
        let schemas = match document
            .get_mut("components")
            .and_then(|c| c.get_mut("schemas"))
            .map(Value::take)
        {
            Some(Value::Object(schemas)) => schemas,
            _ => Map::new(),
        };
        // Only request bodies: every [`Input`] type is named `...Input`. Answers are never
        // validated.
        let bodies = schemas
            .iter()
            .filter(|(name, schema)| {
                name.ends_with("Input")
                    && (schema.get("discriminator").is_some()
                        || schema.get("type") == Some(&Value::from("object")))
            })
            .map(|(name, _)| (name.clone(), OnceLock::new()))
            .collect();
        let mut queries = HashMap::new();
        let paths = document.get("paths").and_then(Value::as_object);
        for (path, item) in paths.into_iter().flatten() {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                    continue;
                };
                let parameters = operation.get("parameters").cloned().unwrap_or_default();
                queries.insert((method, path.clone()), (parameters, OnceLock::new()));
            }
        }
        Validators {
            schemas,
            bodies,
            queries,
            references: Vec::new(),
        }
    }

    /// Compiles every body and query schema now: an error names the first that does not
    /// compile.
    pub fn compile_all(&self) -> Result<(), String> {
        for name in self.bodies.keys() {
            self.body_schema(name)?;
        }
        for (method, path) in self.queries.keys() {
            self.query_schema(method, path)?;
        }
        Ok(())
    }

    /// The body schema named `name`, compiled on first use; `Ok(None)` when there is none.
    fn body_schema(&self, name: &str) -> Result<Option<&BodySchema>, String> {
        let Some(cell) = self.bodies.get(name) else {
            return Ok(None);
        };
        let compiled = cell.get_or_init(|| {
            let schema = self
                .schemas
                .get(name)
                .ok_or_else(|| format!("no component {name}"))?;
            match schema.get("discriminator") {
                Some(discriminator) => union(&self.schemas, schema, discriminator),
                None => Ok(BodySchema::Plain(Plain {
                    validator: compile(&self.schemas, component_ref(name))?,
                    schema: schema.clone(),
                    variant: None,
                })),
            }
        });
        compiled.as_ref().map(Some).map_err(Clone::clone)
    }

    /// The query schema of the operation at `method` and `path`, compiled on first use;
    /// `Ok(None)` when there is no such operation.
    fn query_schema(&self, method: &Method, path: &str) -> Result<Option<&QuerySchema>, String> {
        let Some((parameters, cell)) = self.queries.get(&(method.clone(), path.to_owned())) else {
            return Ok(None);
        };
        let compiled = cell.get_or_init(|| query_schema(&self.schemas, parameters));
        compiled.as_ref().map(Some).map_err(Clone::clone)
    }

    /// The validators, looking each kind of reference up as `references` says.
    pub fn with_references(mut self, references: Vec<(RefKind, ExistingIds)>) -> Validators {
        self.references = references;
        self
    }

    /// The references among `references` that name no record, in the order the body gives
    /// them.
    pub fn missing_references(
        &self,
        conn: &mut DbConnection,
        references: &[Reference],
    ) -> Result<Vec<Reference>, ApiError> {
        let mut missing = Vec::new();
        for (kind, existing) in &self.references {
            let ids: Vec<i32> = references
                .iter()
                .filter(|r| r.kind == *kind)
                .map(|r| r.id)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let found = existing(conn, &ids)?;
            missing.extend(
                references
                    .iter()
                    .filter(|r| r.kind == *kind && !found.contains(&r.id))
                    .cloned(),
            );
        }
        if let Some(unknown) = references
            .iter()
            .find(|r| !self.references.iter().any(|(kind, _)| *kind == r.kind))
        {
            return Err(ApiError::Internal(format!(
                "no way to look up a {} is registered",
                unknown.kind.as_str()
            )));
        }
        missing.sort_by_key(|m| references.iter().position(|r| r == m));
        Ok(missing)
    }

    /// Checks the references of a checked body inside a write transaction, and returns its
    /// value or every error.
    pub fn verified<T>(&self, conn: &mut DbConnection, checked: Checked<T>) -> Result<T, ApiError> {
        let missing = self.missing_references(conn, checked.references())?;
        checked.finish(&missing)
    }

    /// Checks a body against the schema of `T` and its rules.
    pub fn body<T: Input>(&self, body: Value) -> Checked<T> {
        let name = T::name();
        // A schema of the committed document that is missing or does not compile is a defect
        // of the service (a test compiles every schema): 500, whatever the body.
        let schema = match self.body_schema(name.as_ref()) {
            Ok(Some(schema)) => schema,
            Ok(None) => return Checked::defect(format!("no body schema named {name}")),
            Err(e) => return Checked::defect(format!("the body schema {name}: {e}")),
        };
        let (mut errors, references) = self.check(schema, &body);
        let rules = T::rules(&Doc {
            value: &body,
            errors: errors.iter().map(|e| e.field.as_str()).collect(),
        });
        errors.extend(rules);
        let mut errors = dedupe(errors);
        self.sort(schema, &body, &mut errors);
        let wrong: HashSet<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let references = references
            .into_iter()
            .filter(|r| !covered(&wrong, &r.field))
            .collect();
        let value = if errors.is_empty() {
            match serde_json::from_value::<T>(body) {
                Ok(value) => Some(value),
                Err(e) => {
                    // The schema and the type disagree: a defect, named for the log.
                    errors.push(FieldError::new("(body)", format!("cannot be read: {e}")));
                    None
                }
            }
        } else {
            None
        };
        Checked {
            value,
            errors,
            references,
            defect: None,
        }
    }

    fn check(&self, schema: &BodySchema, body: &Value) -> (Vec<FieldError>, Vec<Reference>) {
        if !body.is_object() {
            return (
                vec![FieldError::new(
                    "(body)",
                    format!("must be a JSON object, not {}", type_name(body)),
                )],
                Vec::new(),
            );
        }
        match schema {
            BodySchema::Plain(plain) => self.check_plain(plain, body),
            BodySchema::Union {
                property, variants, ..
            } => {
                let names: Vec<&str> = variants.iter().map(|(v, _)| v.as_str()).collect();
                let given = body.get(property.as_str());
                let variant = given
                    .and_then(Value::as_str)
                    .and_then(|value| variants.iter().find(|(v, _)| v == value));
                match (given, variant) {
                    (_, Some((_, plain))) => self.check_plain(plain, body),
                    (None, _) | (Some(Value::Null), _) => (
                        vec![FieldError::new(
                            property,
                            format!("is required (one of: {})", names.join(", ")),
                        )],
                        Vec::new(),
                    ),
                    (Some(_), None) => (
                        vec![FieldError::new(
                            property,
                            format!("must be one of: {}", names.join(", ")),
                        )],
                        Vec::new(),
                    ),
                }
            }
        }
    }

    fn check_plain(&self, plain: &Plain, body: &Value) -> (Vec<FieldError>, Vec<Reference>) {
        let mut errors = Vec::new();
        for error in plain.validator.iter_errors(body) {
            describe(&error, body, plain, &self.schemas, &mut errors);
        }
        let mut references = Vec::new();
        collect_references(
            &self.schemas,
            &plain.schema,
            body,
            String::new(),
            &mut references,
        );
        (errors, references)
    }

    /// Orders errors as the fields are declared (unknown fields last, by name), so an answer
    /// reads like the form it is about.
    fn sort(&self, schema: &BodySchema, body: &Value, errors: &mut [FieldError]) {
        let fields: Vec<String> = match schema {
            BodySchema::Plain(plain) => property_names(&plain.schema),
            BodySchema::Union {
                property,
                variants,
                fields,
            } => {
                let chosen = body
                    .get(property.as_str())
                    .and_then(Value::as_str)
                    .and_then(|value| variants.iter().find(|(v, _)| v == value));
                match chosen {
                    Some(_) => fields.clone(),
                    None => vec![property.clone()],
                }
            }
        };
        let root = match schema {
            BodySchema::Plain(plain) => Some(&plain.schema),
            BodySchema::Union {
                property, variants, ..
            } => body
                .get(property.as_str())
                .and_then(Value::as_str)
                .and_then(|value| variants.iter().find(|(v, _)| v == value))
                .map(|(_, plain)| &plain.schema),
        };
        errors.sort_by_cached_key(|e| sort_key(&self.schemas, root, &fields, &e.field));
    }

    /// Checks a query string against the parameters of the operation at `method` and `path`
    /// (the route's template, such as `/api/v1/rounds/{id}`).
    pub fn query(
        &self,
        method: &Method,
        path: &str,
        query_string: &str,
    ) -> Result<QueryValues, ApiError> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string)
            .map_err(|e| ApiError::BadRequest(format!("the query string is malformed: {e}")))?;
        let Some(schema) = self
            .query_schema(method, path)
            .map_err(|e| ApiError::Internal(format!("the query schema of {method} {path}: {e}")))?
        else {
            return Err(ApiError::Internal(format!(
                "no query schema for {method} {path}"
            )));
        };
        let mut errors = Vec::new();
        let mut values = Map::new();
        for (name, raw) in pairs {
            if values.contains_key(&name) {
                if !errors.iter().any(|e: &FieldError| e.field == name) {
                    errors.push(FieldError::new(&name, "must be given at most once"));
                }
                continue;
            }
            let kind = schema
                .params
                .iter()
                .find(|(param, _)| *param == name)
                .and_then(|(_, kind)| *kind);
            values.insert(name, coerce(raw, kind));
        }
        let instance = Value::Object(values);
        for error in schema.validator.iter_errors(&instance) {
            let plain_errors = &mut errors;
            describe_query(&error, &instance, plain_errors);
        }
        let mut errors = dedupe(errors);
        let order: Vec<String> = schema.params.iter().map(|(n, _)| n.clone()).collect();
        errors.sort_by_cached_key(|e| sort_key(&Map::new(), None, &order, &e.field));
        let _ = &schema.schema;
        if errors.is_empty() {
            let Value::Object(values) = instance else {
                unreachable!("built as an object above");
            };
            Ok(QueryValues(values))
        } else {
            errors.truncate(MAX_ERRORS);
            Err(ApiError::InvalidQuery(errors))
        }
    }
}

fn union(
    schemas: &Map<String, Value>,
    schema: &Value,
    discriminator: &Value,
) -> Result<BodySchema, String> {
    let property = discriminator
        .get("propertyName")
        .and_then(Value::as_str)
        .ok_or("a discriminator without propertyName")?
        .to_owned();
    let mapping = discriminator
        .get("mapping")
        .and_then(Value::as_object)
        .ok_or("a discriminator without mapping")?;
    // In the order of `oneOf`: the order the variants and their fields are listed in.
    let targets: Vec<&str> = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .ok_or("a discriminator without oneOf")?
        .iter()
        .filter_map(|item| item.get("$ref").and_then(Value::as_str))
        .collect();
    let mut variants = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    for target in targets {
        let value = mapping
            .iter()
            .find(|(_, t)| t.as_str() == Some(target))
            .map(|(value, _)| value.clone())
            .ok_or_else(|| {
                format!("{target} is in oneOf but not in the discriminator's mapping")
            })?;
        let name = target
            .strip_prefix("#/components/schemas/")
            .ok_or("a oneOf item that is not a component reference")?;
        let variant_schema = schemas
            .get(name)
            .ok_or_else(|| format!("no component {name} for the discriminator"))?;
        for field in property_names(variant_schema) {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        variants.push((
            value.clone(),
            Plain {
                validator: compile(schemas, component_ref(name))?,
                schema: variant_schema.clone(),
                variant: Some(value),
            },
        ));
    }
    Ok(BodySchema::Union {
        property,
        variants,
        fields,
    })
}

fn query_schema(schemas: &Map<String, Value>, parameters: &Value) -> Result<QuerySchema, String> {
    let mut properties = Map::new();
    let mut params = Vec::new();
    let listed = parameters.as_array();
    for parameter in listed.into_iter().flatten() {
        if parameter.get("in") != Some(&Value::from("query")) {
            continue;
        }
        let Some(name) = parameter.get("name").and_then(Value::as_str) else {
            continue;
        };
        let schema = parameter
            .get("schema")
            .cloned()
            .unwrap_or(Value::Bool(true));
        let kind = scalar_type(resolve(schemas, &schema));
        properties.insert(name.to_owned(), schema);
        params.push((name.to_owned(), kind));
    }
    let schema = serde_json::json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    Ok(QuerySchema {
        validator: compile(schemas, schema.clone())?,
        schema,
        params,
    })
}

/// The values of a valid query string, typed as the parameters' schemas say.
#[derive(Debug, Clone, Default)]
pub struct QueryValues(Map<String, Value>);

impl QueryValues {
    /// The parameters read into `T` (a struct of optional fields; those it does not name are
    /// ignored: the schema has already refused unknown ones).
    pub fn get<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_value(Value::Object(self.0.clone()))
            .map_err(|e| ApiError::Internal(format!("query parameters the schema let pass: {e}")))
    }

    /// The parameters in a canonical order, as a cache key: the same parameters in another
    /// order are the same query.
    pub fn canonical(&self) -> String {
        let sorted: BTreeMap<&String, &Value> = self.0.iter().collect();
        serde_json::to_string(&sorted).unwrap_or_default()
    }
}

/// The query string of a request, checked against its operation's parameters. A bad one is
/// reported by [`Query::values`], which handlers call after checking who may call them: a caller
/// without the right gets 401 or 403 whatever the query says.
pub struct Query(Result<QueryValues, ApiError>);

impl Query {
    pub fn values(self) -> Result<QueryValues, ApiError> {
        self.0
    }
}

impl FromRequest for Query {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Query, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Query(read_query(req))))
    }
}

fn read_query(req: &HttpRequest) -> Result<QueryValues, ApiError> {
    let validators = req
        .app_data::<web::Data<Validators>>()
        .ok_or_else(|| ApiError::Internal("the validators are not configured".to_owned()))?;
    let pattern = req
        .match_pattern()
        .ok_or_else(|| ApiError::Internal("a query read outside a route".to_owned()))?;
    validators.query(req.method(), &pattern, req.query_string())
}

/// A query value as its parameter's type: the text of an integer parameter is read as a number,
/// so that `?limit=ten` fails as the schema says (`must be an integer`).
fn coerce(raw: String, kind: Option<&'static str>) -> Value {
    match kind {
        Some("integer") => raw.parse::<i64>().map_or(Value::String(raw), Value::from),
        Some("number") => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(raw.clone()), Value::Number),
        Some("boolean") => match raw.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw),
        },
        _ => Value::String(raw),
    }
}

/// The JSON type of a scalar schema (its first non-null type).
fn scalar_type(schema: &Value) -> Option<&'static str> {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    types
        .into_iter()
        .find(|t| *t != "null")
        .and_then(|t| match t {
            "integer" => Some("integer"),
            "number" => Some("number"),
            "boolean" => Some("boolean"),
            "string" => Some("string"),
            _ => None,
        })
}

/// A schema with its `$ref` (and a nullable `oneOf: [X, null]`) followed.
fn resolve<'a>(schemas: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..8 {
        if let Some(name) = current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        {
            match schemas.get(name) {
                Some(target) => current = target,
                None => break,
            }
            continue;
        }
        if let Some(Value::Array(branches)) = current.get("oneOf") {
            let not_null: Vec<&Value> = branches
                .iter()
                .filter(|b| b.get("type") != Some(&Value::from("null")))
                .collect();
            if let [only] = not_null[..] {
                current = only;
                continue;
            }
        }
        break;
    }
    current
}

fn property_names(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Where a field's error goes in the answer: by each segment's declared position.
fn sort_key(
    schemas: &Map<String, Value>,
    root: Option<&Value>,
    top_level: &[String],
    field: &str,
) -> Vec<(usize, String)> {
    let segments = split_path(field);
    let mut key = Vec::with_capacity(segments.len());
    let mut schema = root;
    for (depth, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Index(i) => {
                key.push((*i, String::new()));
                schema = schema.and_then(|s| resolve(schemas, s).get("items"));
            }
            Segment::Name(name) => {
                let position = if depth == 0 {
                    top_level.iter().position(|n| n == name)
                } else {
                    schema.and_then(|s| {
                        resolve(schemas, s)
                            .get("properties")
                            .and_then(Value::as_object)
                            .and_then(|p| p.keys().position(|n| n == name))
                    })
                };
                key.push((position.unwrap_or(usize::MAX), name.clone()));
                schema = schema.and_then(|s| {
                    resolve(schemas, s)
                        .get("properties")
                        .and_then(|p| p.get(name))
                });
            }
        }
    }
    key
}

enum Segment {
    Name(String),
    Index(usize),
}

/// `speakers[2].speaker_id` → `speakers`, 2, `speaker_id`.
fn split_path(field: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in field.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            segments.push(Segment::Name(rest[..open].to_owned()));
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').unwrap_or(stripped.len());
                segments.push(Segment::Index(stripped[..close].parse().unwrap_or(0)));
                rest = stripped.get(close + 1..).unwrap_or("");
            }
        } else {
            segments.push(Segment::Name(rest.to_owned()));
        }
    }
    segments
}

/// One error per field: the first said is the one that matters (a wrong type before the
/// values that type would allow).
fn dedupe(errors: Vec<FieldError>) -> Vec<FieldError> {
    let mut seen: HashSet<String> = HashSet::with_capacity(errors.len());
    errors
        .into_iter()
        .filter(|e| seen.insert(e.field.clone()))
        .collect()
}

/// `speakers[0].speaker_id`, from a location in the instance.
fn field_path(location: &jsonschema::paths::Location) -> String {
    let mut path = String::new();
    for segment in location.iter() {
        match segment {
            LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
            LocationSegment::Index(i) => {
                path.push('[');
                path.push_str(&i.to_string());
                path.push(']');
            }
        }
    }
    path
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
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

fn json_type_name(kind: JsonType) -> &'static str {
    match kind {
        JsonType::Null => "null",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "an array",
        JsonType::Object => "an object",
    }
}

fn options_list(options: &Value) -> String {
    options
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn limit_text(limit: &Value) -> String {
    match limit.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
        _ => limit.to_string(),
    }
}

/// The message of one schema error, in words a person can act on.
fn message(kind: &ValidationErrorKind, instance: &Value) -> Option<String> {
    Some(match kind {
        ValidationErrorKind::Type { kind } => {
            let expected: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![json_type_name(*t)],
                TypeKind::Multiple(set) => set
                    .iter()
                    .filter(|t| *t != JsonType::Null)
                    .map(json_type_name)
                    .collect(),
            };
            format!(
                "must be {}, not {}",
                expected.join(" or "),
                type_name(instance)
            )
        }
        ValidationErrorKind::Enum { options } => {
            let list = options_list(options);
            if instance.is_null() {
                format!("must be one of: {list} (not null)")
            } else {
                format!("must be one of: {list}")
            }
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("must be {expected_value}")
        }
        ValidationErrorKind::MaxLength { limit } => format!(
            "must be at most {limit} characters (got {})",
            instance.as_str().map_or(0, |s| s.chars().count())
        ),
        ValidationErrorKind::MinLength { limit } => {
            if *limit == 1 {
                "must not be blank".to_owned()
            } else {
                format!("must be at least {limit} characters")
            }
        }
        ValidationErrorKind::Maximum { limit } => format!("must be at most {}", limit_text(limit)),
        ValidationErrorKind::Minimum { limit } => {
            format!("must be at least {}", limit_text(limit))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            format!("must be less than {}", limit_text(limit))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            format!("must be more than {}", limit_text(limit))
        }
        ValidationErrorKind::MaxItems { limit } => format!(
            "must have at most {limit} items (got {})",
            instance.as_array().map_or(0, Vec::len)
        ),
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} items"),
        ValidationErrorKind::Pattern { pattern } => {
            pattern_message(pattern, instance.as_str().unwrap_or_default())
        }
        ValidationErrorKind::Format { format } => match format.as_str() {
            "email" => "must be an email address such as name@example.org".to_owned(),
            "date-time" => format!(
                "must be an RFC 3339 date-time with an offset, such as {}, between years 0000 \
                 and 9999 in UTC",
                Timestamp::EXAMPLE
            ),
            "date" => "must be a real date written YYYY-MM-DD, such as 2019-03-21".to_owned(),
            other => format!("must be in the {other} format"),
        },
        ValidationErrorKind::FalseSchema => "is not allowed".to_owned(),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            format!("must be a multiple of {multiple_of}")
        }
        _ => return None,
    })
}

/// Turns one schema error into field errors: one for most, one per field for missing and unknown
/// fields, one per repeated item for `uniqueItems`.
fn describe(
    error: &jsonschema::ValidationError<'_>,
    body: &Value,
    plain: &Plain,
    schemas: &Map<String, Value>,
    out: &mut Vec<FieldError>,
) {
    let path = field_path(error.instance_path());
    let field = if path.is_empty() {
        "(body)".to_owned()
    } else {
        path.clone()
    };
    let instance: &Value = error.instance();
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let message = match (&plain.variant, path.is_empty()) {
                (Some(variant), true) => format!("is required for {variant}"),
                _ => "is required".to_owned(),
            };
            out.push(FieldError::new(join(&path, name), message));
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let mut unexpected = unexpected.clone();
            unexpected.sort();
            for name in unexpected {
                let message = match (&plain.variant, path.is_empty()) {
                    (Some(variant), true) => {
                        let elsewhere = other_variants_with(schemas, body, &name);
                        if elsewhere.is_empty() {
                            "is not a field of this request body".to_owned()
                        } else {
                            format!("is only for {}, not {variant}", elsewhere.join(", "))
                        }
                    }
                    _ => "is not a field of this request body".to_owned(),
                };
                out.push(FieldError::new(join(&path, &name), message));
            }
        }
        ValidationErrorKind::UniqueItems => {
            let items = instance.as_array().cloned().unwrap_or_default();
            for (j, item) in items.iter().enumerate() {
                if items[..j].contains(item) {
                    let shown = item
                        .as_str()
                        .map_or_else(|| item.to_string(), str::to_owned);
                    out.push(FieldError::new(
                        format!("{path}[{j}]"),
                        format!("{shown} is listed twice"),
                    ));
                }
            }
        }
        kind => out.push(FieldError::new(
            field,
            message(kind, instance).unwrap_or_else(|| "is not valid here".to_owned()),
        )),
    }
}

/// The variants of the union `body` belongs to that have a field `name` (for "is only for").
fn other_variants_with(schemas: &Map<String, Value>, _body: &Value, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for schema in schemas.values() {
        let Some(discriminator) = schema.get("discriminator") else {
            continue;
        };
        let property = discriminator
            .get("propertyName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mapping = discriminator.get("mapping").and_then(Value::as_object);
        for (value, target) in mapping.into_iter().flatten() {
            let target = target
                .as_str()
                .and_then(|t| t.strip_prefix("#/components/schemas/"))
                .and_then(|t| schemas.get(t));
            let has = target
                .and_then(|t| t.get("properties"))
                .is_some_and(|p| p.get(name).is_some());
            if has && name != property && !found.contains(value) {
                found.push(value.clone());
            }
        }
    }
    found
}

fn describe_query(
    error: &jsonschema::ValidationError<'_>,
    _query: &Value,
    out: &mut Vec<FieldError>,
) {
    let path = field_path(error.instance_path());
    let instance: &Value = error.instance();
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let mut unexpected = unexpected.clone();
            unexpected.sort();
            for name in unexpected {
                out.push(FieldError::new(
                    name,
                    "is not a parameter of this operation",
                ));
            }
        }
        ValidationErrorKind::Required { property } => out.push(FieldError::new(
            property.as_str().unwrap_or_default(),
            "is required",
        )),
        kind => out.push(FieldError::new(
            path,
            message(kind, instance).unwrap_or_else(|| "is not valid here".to_owned()),
        )),
    }
}

/// Every id in `instance` that its schema marks as naming another record.
fn collect_references(
    schemas: &Map<String, Value>,
    schema: &Value,
    instance: &Value,
    path: String,
    out: &mut Vec<Reference>,
) {
    let schema = resolve(schemas, schema);
    if let Some(kind) = schema
        .get(REFERENCES_KEYWORD)
        .and_then(Value::as_str)
        .and_then(RefKind::parse)
    {
        if let Some(id) = instance.as_i64().and_then(|n| i32::try_from(n).ok()) {
            out.push(Reference {
                field: path.clone(),
                kind,
                id,
            });
        }
        return;
    }
    match instance {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, value) in fields {
                if let Some(property) = properties.and_then(|p| p.get(name)) {
                    collect_references(schemas, property, value, join(&path, name), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    collect_references(schemas, item_schema, item, format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Applies a JSON merge patch (RFC 7386) to the current representation of a record.
///
/// A member the record does not have is kept even when it is `null` (which merging would
/// drop), so that checking the result reports it with every other bad field: otherwise
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_is_compiled_on_first_use_and_one_that_cannot_compile_is_named() {
        let document = serde_json::json!({
            "paths": {"/things": {"get": {"parameters": [
                {"in": "query", "name": "limit", "schema": {"type": "integer", "minimum": 1}}
            ]}}},
            "components": {"schemas": {
                "GoodInput": {"type": "object", "properties": {"a": {"type": "string"}}},
                "BadInput": {"type": "object", "properties": {"a": {"type": 12}}}
            }}
        });
        let validators = Validators::from_document(document);
        let cell = |name: &str| validators.bodies.get(name).map(|c| c.get().is_some());
        assert_eq!(cell("GoodInput"), Some(false));
        assert!(validators
            .body_schema("GoodInput")
            .is_ok_and(|s| s.is_some()));
        assert_eq!(cell("GoodInput"), Some(true));
        assert_eq!(cell("BadInput"), Some(false));
        let error = validators
            .compile_all()
            .expect_err("BadInput cannot compile");
        assert!(error.contains("cannot compile"), "{error}");
        // A body checked against a schema that cannot compile, or that is missing, is the
        // service's defect (500), never the client's (422).
        #[derive(serde::Deserialize, utoipa::ToSchema)]
        #[allow(dead_code)]
        struct BadInput {
            a: String,
        }
        impl Input for BadInput {}
        #[derive(serde::Deserialize, utoipa::ToSchema)]
        #[allow(dead_code)]
        struct MissingInput {
            a: String,
        }
        impl Input for MissingInput {}
        let body = serde_json::json!({"a": "x"});
        let checked = validators.body::<BadInput>(body.clone());
        assert!(checked.is_refused());
        assert!(
            matches!(checked.into_result(), Err(ApiError::Internal(e)) if e.contains("BadInput"))
        );
        let missing = validators.body::<MissingInput>(body);
        assert!(
            matches!(missing.into_result(), Err(ApiError::Internal(e)) if e.contains("MissingInput"))
        );
        let refused = validators.query(&Method::GET, "/things", "limit=0");
        assert!(matches!(refused, Err(ApiError::InvalidQuery(e)) if e[0].field == "limit"));
        assert!(validators.query(&Method::GET, "/things", "limit=2").is_ok());
    }

    #[test]
    fn paths_split_into_names_and_indexes() {
        let segments = split_path("speakers[2].speaker_id");
        assert!(matches!(&segments[0], Segment::Name(n) if n == "speakers"));
        assert!(matches!(segments[1], Segment::Index(2)));
        assert!(matches!(&segments[2], Segment::Name(n) if n == "speaker_id"));
    }

    #[test]
    fn an_error_covers_its_own_field_and_what_is_inside_it() {
        assert!(covers("speakers", "speakers[1].speaker_id"));
        assert!(covers("speakers[1]", "speakers[1].speaker_id"));
        assert!(!covers("speakers[1].role", "speakers[1].speaker_id"));
        assert!(!covers("speaker", "speakers"));
        let wrong: HashSet<&str> = ["points[3]", "title"].into_iter().collect();
        assert!(covered(&wrong, "points[3].pdsa_cycle_id"));
        assert!(covered(&wrong, "title"));
        assert!(!covered(&wrong, "points[30].pdsa_cycle_id"));
        assert!(!covered(&wrong, "points"));
    }

    #[test]
    fn a_merge_patch_keeps_unknown_null_members_so_they_are_reported() {
        let mut current = serde_json::json!({"name": "a", "abbreviation": "b"});
        merge_patch(
            &mut current,
            &serde_json::json!({"abbreviation": null, "nmae": null}),
        );
        assert_eq!(current, serde_json::json!({"name": "a", "nmae": null}));
    }
}
