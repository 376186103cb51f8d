//! Field types: each kind of constraint is declared once, as a type that carries its own OpenAPI
//! schema (which is also the validator, see the `validate` module) and its own serde.
//!
//! A limit is a type parameter (`Text<300>`), so a field's limit is written in one place: the
//! type alias or field that uses it. Patterns are the constants below, each with the message a
//! person reads when a value does not match it.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// The patterns of text fields (ECMA-262 syntax, as JSON Schema reads them).
pub mod patterns {
    /// Text that may span lines: no control characters but tab, line feed and carriage return.
    pub const TEXT: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";
    /// Like [`TEXT`], with at least one character that is not white space.
    pub const NAME: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";
    /// One line: no control characters at all (search terms).
    pub const LINE: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
    /// One credential: one line, not blank, no comma (commas separate credentials when printed).
    pub const CREDENTIAL: &str = r"^[^,\u0000-\u001F\u007F-\u009F]*[^,\s\u0000-\u001F\u007F-\u009F][^,\u0000-\u001F\u007F-\u009F]*$";
}

/// What a person reads when `value` does not match `pattern`.
pub fn pattern_message(pattern: &str, value: &str) -> String {
    let multi_line = pattern == patterns::TEXT || pattern == patterns::NAME;
    let is_control = |c: char| c.is_control() && !(multi_line && matches!(c, '\t' | '\n' | '\r'));
    if value.chars().any(is_control) {
        "must not contain control characters".to_owned()
    } else if pattern == patterns::CREDENTIAL && value.contains(',') {
        "must not contain a comma: give each credential separately".to_owned()
    } else if pattern == patterns::NAME || pattern == patterns::CREDENTIAL {
        "must not be blank".to_owned()
    } else {
        format!("must match the pattern {pattern}")
    }
}

fn string_schema(max: usize, min: Option<usize>, pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max))
        .min_length(min)
        .pattern(Some(pattern))
}

/// Implements the schema name of a constrained scalar. Such components are inlined where they
/// are used when the document is built (the `openapi` module), so the name only has to be unique.
macro_rules! scalar_name {
    ($name:literal) => {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed($name)
        }
    };
    ($prefix:literal, $($n:expr),+) => {
        fn name() -> Cow<'static, str> {
            let mut name = String::from($prefix);
            $( name.push('_'); name.push_str(&$n.to_string()); )+
            Cow::Owned(name)
        }
    };
}

/// Optional free text of at most `MAX` characters, trimmed; blank counts as absent (see
/// [`Text::non_blank`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<const MAX: usize>(String);

/// Required text of at most `MAX` characters with at least one that is not white space, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name<const MAX: usize>(String);

/// One line of at most `MAX` characters, as typed (search terms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Line<const MAX: usize>(String);

/// One credential, such as `MD`, `MPH` or `PhD`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credential(String);

/// An e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

macro_rules! string_newtype {
    ($ty:ident $(<const $p:ident: usize>)?, $trim:expr) => {
        impl$(<const $p: usize>)? $ty$(<$p>)? {
            /// Wraps a value read back from the database (it was checked when written).
            pub fn stored(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }
        impl$(<const $p: usize>)? Serialize for $ty$(<$p>)? {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
        impl<'de $(, const $p: usize)?> Deserialize<'de> for $ty$(<$p>)? {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                let trim: fn(String) -> String = $trim;
                Ok(Self(trim(raw)))
            }
        }
        impl$(<const $p: usize>)? fmt::Display for $ty$(<$p>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn trimmed(raw: String) -> String {
    let trimmed = raw.trim();
    if trimmed.len() == raw.len() {
        raw
    } else {
        trimmed.to_owned()
    }
}

string_newtype!(Text<const MAX: usize>, trimmed);
string_newtype!(Name<const MAX: usize>, trimmed);
string_newtype!(Line<const MAX: usize>, |raw| raw);
string_newtype!(Credential, trimmed);
string_newtype!(Email, trimmed);

impl<const MAX: usize> Text<MAX> {
    /// The text, or `None` when it is blank: a blank optional field is an absent one.
    pub fn non_blank(text: Option<&Self>) -> Option<&str> {
        text.map(Text::as_str).filter(|s| !s.is_empty())
    }
}

impl<const MAX: usize> PartialSchema for Text<MAX> {
    fn schema() -> RefOr<Schema> {
        string_schema(MAX, None, patterns::TEXT).into()
    }
}
impl<const MAX: usize> ToSchema for Text<MAX> {
    scalar_name!("Text", MAX);
}

impl<const MAX: usize> PartialSchema for Name<MAX> {
    fn schema() -> RefOr<Schema> {
        string_schema(MAX, Some(1), patterns::NAME).into()
    }
}
impl<const MAX: usize> ToSchema for Name<MAX> {
    scalar_name!("Name", MAX);
}

impl<const MAX: usize> PartialSchema for Line<MAX> {
    fn schema() -> RefOr<Schema> {
        string_schema(MAX, None, patterns::LINE).into()
    }
}
impl<const MAX: usize> ToSchema for Line<MAX> {
    scalar_name!("Line", MAX);
}

impl Credential {
    pub const MAX: usize = 20;
}
impl PartialSchema for Credential {
    fn schema() -> RefOr<Schema> {
        string_schema(Credential::MAX, Some(1), patterns::CREDENTIAL)
            .examples(["MPH"])
            .into()
    }
}
impl ToSchema for Credential {
    scalar_name!("Credential");
}

impl Email {
    /// RFC 5321's limit on a forward path.
    pub const MAX: usize = 254;

    /// The check behind the schema's `format: email`: an address with a dot in its domain.
    pub fn is_valid(text: &str) -> bool {
        email_address::EmailAddress::is_valid(text)
            && text
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.contains('.'))
    }
}
impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(Email::MAX))
            .into()
    }
}
impl ToSchema for Email {
    scalar_name!("Email");
}

/// An RFC 3339 date-time with any offset, kept in UTC at the database's precision
/// (microseconds). In UTC its year must have four digits, or the answer would not be RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub const EXAMPLE: &'static str = "2019-04-25T12:00:00-04:00";

    pub fn parse(text: &str) -> Option<Timestamp> {
        let parsed = DateTime::parse_from_rfc3339(text).ok()?;
        let utc = parsed.with_timezone(&Utc).trunc_subsecs(6);
        (0..=9999).contains(&utc.year()).then_some(Timestamp(utc))
    }

    /// The check behind the schema's `format: date-time`.
    pub fn is_valid(text: &str) -> bool {
        Timestamp::parse(text).is_some()
    }

    pub fn naive(self) -> chrono::NaiveDateTime {
        self.0.naive_utc()
    }

    pub fn from_naive(stored: chrono::NaiveDateTime) -> Timestamp {
        Timestamp(stored.and_utc())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Timestamp::parse(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!("{raw:?} is not an RFC 3339 date-time"))
        })
    }
}
impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            // "9999-12-31T23:59:59.999999-23:59", the longest an answer or a sane request has.
            .max_length(Some(64))
            .into()
    }
}
impl ToSchema for Timestamp {
    scalar_name!("Timestamp");
}

/// Declares a number type: an `f64` from `min` to `max` (and, optionally, more than
/// `exclusive_min`, and a multiple of `multiple_of`), finite, with its schema, its serde and
/// its check declared once. JSON Schema states the whole rule, so the document is its validator.
#[macro_export]
macro_rules! number_type {
    (
        $(#[$meta:meta])* $vis:vis $name:ident, min = $min:expr, max = $max:expr
        $(, exclusive_min = $exclusive:expr)? $(, multiple_of = $step:expr)? $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        $vis struct $name(f64);

        impl $name {
            pub const MIN: f64 = $min;
            pub const MAX: f64 = $max;

            /// The value, if the type allows it.
            pub fn new(value: f64) -> Option<Self> {
                let ok = value.is_finite()
                    && (Self::MIN..=Self::MAX).contains(&value)
                    $(&& value > $exclusive)?
                    $(&& (value / $step).fract() == 0.0)?;
                ok.then_some($name(value))
            }

            /// Wraps a value read back from the database (it was checked when written).
            pub fn stored(value: f64) -> Self {
                $name(value)
            }

            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_f64(self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = f64::deserialize(deserializer)?;
                $name::new(value).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{value} is not a {} number from {} to {}",
                        stringify!($name),
                        $name::MIN,
                        $name::MAX
                    ))
                })
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Number)
                    .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Double,
                    )))
                    .minimum(Some($name::MIN))
                    .maximum(Some($name::MAX))
                    // An exclusive bound replaces the inclusive one: a schema with both is
                    // ambiguous to readers (Redocly's no-mixed-number-range-constraints).
                    $(.minimum(None::<f64>).exclusive_minimum(Some($exclusive)))?
                    $(.multiple_of(Some($step)))?
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}

/// A local time of day, `HH:MM` (24-hour clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime(chrono::NaiveTime);

impl LocalTime {
    const PATTERN: &'static str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
    pub const NOON: LocalTime = match chrono::NaiveTime::from_hms_opt(12, 0, 0) {
        Some(noon) => LocalTime(noon),
        None => panic!("12:00:00 is a time of day"),
    };

    pub fn parse(text: &str) -> Option<LocalTime> {
        chrono::NaiveTime::parse_from_str(text, "%H:%M")
            .ok()
            .filter(|_| text.len() == 5)
            .map(LocalTime)
    }

    pub fn time(self) -> chrono::NaiveTime {
        self.0
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.format("%H:%M").to_string())
    }
}
impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        LocalTime::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom(format!("{raw:?} is not a time such as 12:00")))
    }
}
impl PartialSchema for LocalTime {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(LocalTime::PATTERN))
            .max_length(Some(5))
            .examples(["12:00"])
            .into()
    }
}
impl ToSchema for LocalTime {
    scalar_name!("LocalTime");
}

/// A calendar date, `YYYY-MM-DD` (RFC 3339's full-date), with no time and no zone: a local date
/// in the series' time zone wherever the service reads one (a plan's range, a skipped date), and
/// the same day wherever it is read otherwise (a due date, a target date, the first day of a
/// measure's period). One type for every date of the API, so each is checked and written alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDate(pub jiff::civil::Date);

impl LocalDate {
    /// Exactly `YYYY-MM-DD`, a real date (no 2019-02-30), years 0001 to 9999.
    pub fn parse(text: &str) -> Option<LocalDate> {
        let well_formed = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| {
                matches!(i, 4 | 7) == (b == b'-') && (matches!(i, 4 | 7) || b.is_ascii_digit())
            });
        if !well_formed {
            return None;
        }
        text.parse::<jiff::civil::Date>()
            .ok()
            .filter(|d| d.year() >= 1)
            .map(LocalDate)
    }

    /// The check behind the schema's `format: date`.
    pub fn is_valid(text: &str) -> bool {
        LocalDate::parse(text).is_some()
    }

    pub fn date(self) -> jiff::civil::Date {
        self.0
    }

    /// The date as diesel's `Date` columns hold it.
    pub fn naive(self) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(
            i32::from(self.0.year()),
            u32::from(self.0.month().unsigned_abs()),
            u32::from(self.0.day().unsigned_abs()),
        )
        .unwrap_or_default()
    }

    /// A date read from a `Date` column. The service writes years 0001 to 9999 only; a year
    /// beyond what jiff holds (±9999) is read as its nearest end rather than refused.
    pub fn from_naive(date: chrono::NaiveDate) -> LocalDate {
        let year = date.year().clamp(-9999, 9999);
        let civil = i16::try_from(year)
            .ok()
            .and_then(|year| {
                jiff::civil::Date::new(year, date.month() as i8, date.day() as i8).ok()
            })
            .unwrap_or(if year < 1 {
                jiff::civil::Date::MIN
            } else {
                jiff::civil::Date::MAX
            });
        LocalDate(civil)
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

impl Serialize for LocalDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for LocalDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        LocalDate::parse(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!("{raw:?} is not a date such as 2019-03-21"))
        })
    }
}
impl PartialSchema for LocalDate {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .max_length(Some(10))
            .examples(["2019-03-21"])
            .into()
    }
}
impl ToSchema for LocalDate {
    scalar_name!("LocalDate");
}

/// An RFC 3339 date-time in a time zone's local time, with that zone's offset
/// (`2019-04-25T12:00:00-04:00`): what a front-end shows without a time-zone library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTimestamp(pub DateTime<chrono::FixedOffset>);

impl LocalTimestamp {
    pub fn in_zone(at: Timestamp, zone: &crate::platform::timezone::Zone) -> LocalTimestamp {
        LocalTimestamp(crate::platform::timezone::local(zone, at.0))
    }
}

impl Serialize for LocalTimestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}
impl<'de> Deserialize<'de> for LocalTimestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(LocalTimestamp)
            .map_err(serde::de::Error::custom)
    }
}
impl PartialSchema for LocalTimestamp {
    fn schema() -> RefOr<Schema> {
        Timestamp::schema()
    }
}
impl ToSchema for LocalTimestamp {
    scalar_name!("LocalTimestamp");
}

/// An integer from `MIN` to `MAX`. JSON Schema counts `7.0` as an integer, so it is read as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Int<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Int<MIN, MAX> {
    pub fn new(value: i64) -> Option<Self> {
        (MIN..=MAX).contains(&value).then_some(Int(value))
    }
    /// The nearest value in range (for counts the database gives, which are in range).
    pub fn clamped(value: i64) -> Self {
        Int(value.clamp(MIN, MAX))
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// An integer in a JSON number, `7` or `7.0`.
fn integral<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    number
        .as_i64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64)
                .map(|f| f as i64)
        })
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not an integer")))
}

/// Zero, or the bound nearest to it.
impl<const MIN: i64, const MAX: i64> Default for Int<MIN, MAX> {
    fn default() -> Self {
        Int::clamped(0)
    }
}

impl<const MIN: i64, const MAX: i64> Serialize for Int<MIN, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}
impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = integral(deserializer)?;
        Int::new(value).ok_or_else(|| {
            serde::de::Error::custom(format!("{value} is not between {MIN} and {MAX}"))
        })
    }
}
impl<const MIN: i64, const MAX: i64> PartialSchema for Int<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        let format = if MIN >= i64::from(i32::MIN) && MAX <= i64::from(i32::MAX) {
            KnownFormat::Int32
        } else {
            KnownFormat::Int64
        };
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .minimum(Some(MIN as f64))
            .maximum(Some(MAX as f64))
            .into()
    }
}
impl<const MIN: i64, const MAX: i64> ToSchema for Int<MIN, MAX> {
    scalar_name!("Int", MIN.unsigned_abs(), MAX);
}

/// Hours in quarter-hour steps, 0 to 24: CME credit is designated and claimed in 0.25 steps
/// (AMA PRA Category 1: one credit per 60 minutes). A JSON number that is a multiple of 0.25,
/// kept as a count of quarter hours, so that sums and comparisons are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct QuarterHours(i32);

impl QuarterHours {
    /// A day: no round is longer.
    pub const MAX_QUARTERS: i32 = 96;
    pub const ZERO: QuarterHours = QuarterHours(0);

    /// `quarters` quarter hours, if that is 0 to a day.
    pub fn from_quarters(quarters: i64) -> Option<QuarterHours> {
        (0..=i64::from(Self::MAX_QUARTERS))
            .contains(&quarters)
            .then_some(QuarterHours(quarters as i32))
    }

    /// The nearest value in range (for counts the database keeps, which are in range).
    pub fn clamped(quarters: i64) -> QuarterHours {
        QuarterHours(quarters.clamp(0, i64::from(Self::MAX_QUARTERS)) as i32)
    }

    /// A length of time rounded to the nearest quarter hour (7.5 minutes and more round up),
    /// at most a day: what a round of that length may designate.
    pub fn of_seconds_rounded(seconds: i64) -> QuarterHours {
        QuarterHours::clamped((seconds.max(0) + 450) / 900)
    }

    /// `hours`, if it is a multiple of 0.25 from 0 to 24.
    pub fn from_hours(hours: f64) -> Option<QuarterHours> {
        let quarters = hours * 4.0;
        if !quarters.is_finite() || quarters.fract() != 0.0 {
            return None;
        }
        QuarterHours::from_quarters(quarters as i64)
    }

    pub fn quarters(self) -> i32 {
        self.0
    }

    pub fn hours(self) -> f64 {
        f64::from(self.0) / 4.0
    }
}

impl fmt::Display for QuarterHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.hours())
    }
}

impl Serialize for QuarterHours {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.hours())
    }
}
impl<'de> Deserialize<'de> for QuarterHours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hours = f64::deserialize(deserializer)?;
        QuarterHours::from_hours(hours).ok_or_else(|| {
            serde::de::Error::custom(format!("{hours} is not a multiple of 0.25 from 0 to 24"))
        })
    }
}
impl PartialSchema for QuarterHours {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .multiple_of(Some(0.25))
            .minimum(Some(0.0))
            .maximum(Some(f64::from(QuarterHours::MAX_QUARTERS) / 4.0))
            .examples([1.0])
            .into()
    }
}
impl ToSchema for QuarterHours {
    scalar_name!("QuarterHours");
}

/// The id of a record: a positive 32-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(pub i32);

impl Id {
    fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
        let value = integral(deserializer)?;
        i32::try_from(value)
            .ok()
            .filter(|id| *id >= 1)
            .ok_or_else(|| serde::de::Error::custom(format!("{value} is not an id")))
    }

    fn schema_with(references: Option<&str>) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(1.0))
            .maximum(Some(f64::from(i32::MAX)))
            .extensions(references.map(|what| {
                ExtensionsBuilder::new()
                    .add(REFERENCES_KEYWORD, what)
                    .build()
            }))
            .into()
    }
}
impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Id::read(deserializer).map(Id)
    }
}
impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        Id::schema_with(None)
    }
}
impl ToSchema for Id {
    scalar_name!("Id");
}

/// The schema extension that marks an id as naming a record of another resource. The
/// validator collects such ids (the `validate` module) and the write checks that they exist.
pub const REFERENCES_KEYWORD: &str = "x-references";

/// The kinds of records a request body may refer to by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    Department,
    Speaker,
    Round,
    Initiative,
    PdsaCycle,
    Outcome,
}

impl RefKind {
    pub const ALL: [RefKind; 6] = [
        RefKind::Department,
        RefKind::Speaker,
        RefKind::Round,
        RefKind::Initiative,
        RefKind::PdsaCycle,
        RefKind::Outcome,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Department => "department",
            RefKind::Speaker => "speaker",
            RefKind::Round => "round",
            RefKind::Initiative => "initiative",
            RefKind::PdsaCycle => "PDSA cycle",
            RefKind::Outcome => "outcome",
        }
    }

    pub fn parse(name: &str) -> Option<RefKind> {
        RefKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

macro_rules! reference {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub i32);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Id::read(deserializer).map($name)
            }
        }
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                Id::schema_with(Some($kind.as_str()))
            }
        }
        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

reference!(
    /// The id of a department that must exist.
    DepartmentRef,
    RefKind::Department
);
reference!(
    /// The id of a speaker who must exist.
    SpeakerRef,
    RefKind::Speaker
);
reference!(
    /// The id of a round that must exist.
    RoundRef,
    RefKind::Round
);
reference!(
    /// The id of an initiative that must exist.
    InitiativeRef,
    RefKind::Initiative
);
reference!(
    /// The id of a PDSA cycle that must exist.
    PdsaCycleRef,
    RefKind::PdsaCycle
);
reference!(
    /// The id of a round outcome that must exist.
    OutcomeRef,
    RefKind::Outcome
);

/// Declares a list type: a `Vec` of `$item` with at most `max` items (and, with `unique`, no
/// item twice), serialized as the plain array. The limit is declared here once, and an input and
/// an answer that list the same items share the type.
#[macro_export]
macro_rules! list_type {
    ($(#[$meta:meta])* $vis:vis $name:ident($item:ty), max = $max:expr $(, unique = $unique:expr)? $(,)?) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        $vis struct $name(pub Vec<$item>);

        impl $name {
            pub const MAX: usize = $max;
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(utoipa::openapi::Ref::from_schema_name(
                        <$item as utoipa::ToSchema>::name(),
                    ))
                    .max_items(Some($max))
                    $(.unique_items($unique))?
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }

            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                schemas.push((
                    <$item as utoipa::ToSchema>::name().into_owned(),
                    <$item as utoipa::PartialSchema>::schema(),
                ));
                <$item as utoipa::ToSchema>::schemas(schemas);
            }
        }
    };
}

/// Declares an enum stored as text: its serde names, its OpenAPI `enum`, its parsing and its
/// diesel mapping all come from the one string given for each variant.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("{other:?} is not a {}", stringify!($name))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = String::from_sql(bytes)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_blank_text_counts_as_absent() {
        let text: Text<10> = serde_json::from_str("\"  hi \"").unwrap_or_default();
        assert_eq!(text.as_str(), "hi");
        let blank: Text<10> = serde_json::from_str("\"   \"").unwrap_or_default();
        assert_eq!(Text::non_blank(Some(&blank)), None);
    }

    #[test]
    fn integers_may_be_written_as_integral_floats() {
        let seven: Int<1, 10> = serde_json::from_str("7.0").expect("7.0 is an integer");
        assert_eq!(seven.get(), 7);
        assert!(serde_json::from_str::<Int<1, 10>>("7.5").is_err());
        assert!(serde_json::from_str::<Int<1, 10>>("11").is_err());
        assert_eq!(serde_json::from_str::<Id>("3.0").ok(), Some(Id(3)));
    }

    #[test]
    fn quarter_hours_are_multiples_of_a_quarter_from_zero_to_a_day() {
        let read = |text: &str| serde_json::from_str::<QuarterHours>(text).ok();
        assert_eq!(read("0.75").map(QuarterHours::quarters), Some(3));
        assert_eq!(read("1").map(QuarterHours::quarters), Some(4));
        assert_eq!(read("24").map(QuarterHours::quarters), Some(96));
        for bad in ["0.1", "-0.25", "24.25", "1.3"] {
            assert_eq!(read(bad), None, "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&QuarterHours::clamped(5)).unwrap_or_default(),
            "1.25"
        );
        // To the nearest quarter hour: 50 minutes are 0.75, 53 minutes are 1.
        assert_eq!(QuarterHours::of_seconds_rounded(50 * 60).quarters(), 3);
        assert_eq!(QuarterHours::of_seconds_rounded(52 * 60 + 29).quarters(), 3);
        assert_eq!(QuarterHours::of_seconds_rounded(52 * 60 + 30).quarters(), 4);
        assert_eq!(QuarterHours::of_seconds_rounded(90 * 60).quarters(), 6);
        assert_eq!(QuarterHours::of_seconds_rounded(3 * 86400).quarters(), 96);
    }

    #[test]
    fn a_timestamp_must_have_a_four_digit_year_in_utc() {
        assert!(Timestamp::is_valid("2019-04-25T12:00:00-04:00"));
        assert!(!Timestamp::is_valid("0000-01-01T00:00:00+01:00"));
        assert!(!Timestamp::is_valid("9999-12-31T23:00:00-05:00"));
        assert!(!Timestamp::is_valid("2019-04-25 12:00"));
    }

    #[test]
    fn a_local_date_is_exactly_a_real_yyyy_mm_dd() {
        assert_eq!(
            LocalDate::parse("2019-03-21").map(|d| d.to_string()),
            Some("2019-03-21".to_owned())
        );
        for bad in [
            "2019-02-30",
            "2019-3-21",
            "20190321",
            "2019-03-21T12:00",
            "0000-01-01",
            "+2019-03-21",
        ] {
            assert_eq!(LocalDate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn pattern_messages_say_what_to_fix() {
        assert_eq!(pattern_message(patterns::NAME, "   "), "must not be blank");
        assert_eq!(
            pattern_message(patterns::TEXT, "a\u{0}b"),
            "must not contain control characters"
        );
        assert!(pattern_message(patterns::CREDENTIAL, "MD, MPH").contains("comma"));
    }

    #[test]
    fn a_date_is_a_full_date_of_the_years_1_to_9999() {
        assert!(LocalDate::parse("2019-05-23").is_some());
        assert!(LocalDate::parse("0001-01-01").is_some());
        assert!(LocalDate::parse("0000-12-31").is_none());
        assert!(LocalDate::parse("2019-02-30").is_none());
        assert!(LocalDate::parse("2019-5-23").is_none());
        assert!(LocalDate::parse("2019-05-23T00:00:00Z").is_none());
    }

    #[test]
    fn an_email_address_needs_a_dot_in_its_domain() {
        assert!(Email::is_valid("m.stefan@example.org"));
        assert!(!Email::is_valid("nobody"));
        assert!(!Email::is_valid("a@localhost"));
        assert!(!Email::is_valid(""));
    }
}
