//! Diesel table definitions, written by hand to match `migrations/` on both backends.
//! Only portable SQL types appear here (see `migrations/README.md`).

diesel::table! {
    departments (id) {
        id -> Integer,
        name -> Text,
        name_key -> Text,
        abbreviation -> Nullable<Text>,
        description -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    speakers (id) {
        id -> Integer,
        full_name -> Text,
        credentials -> Text,
        title -> Nullable<Text>,
        email -> Nullable<Text>,
        department_id -> Nullable<Integer>,
        bio -> Nullable<Text>,
        search_text -> Text,
        /// The identity provider's subject of the speaker, who may then answer for their own
        /// places on rounds; unique.
        sub -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    rounds (id) {
        id -> Integer,
        title -> Nullable<Text>,
        description -> Nullable<Text>,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        location -> Text,
        status -> Text,
        search_text -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
        sequence -> Integer,
        /// A copy of the round's speakers, kept by the database's triggers from
        /// `round_speakers` and `speakers`: `[[speaker_id, full_name, credentials, role, status,
        /// invited_at, responded_at], ...]` in their order. The link tables are the record; `rounds::links_copies_*` tests
        /// rebuild the copies from them and compare.
        speakers_doc -> Text,
        /// A copy of the round's departments, kept as `speakers_doc` is:
        /// `[[department_id, name, abbreviation], ...]` in their order.
        departments_doc -> Text,
        /// The designated credit, in quarter hours (see `credit_hours_set`).
        credit_quarter_hours -> Integer,
        /// Whether an organizer chose `credit_quarter_hours`; else it is the series' default.
        credit_hours_set -> Bool,
    }
}

diesel::table! {
    round_speakers (round_id, speaker_id) {
        round_id -> Integer,
        speaker_id -> Integer,
        position -> Integer,
        role -> Text,
        /// `invited`, `confirmed` (the default) or `declined`.
        status -> Text,
        invited_at -> Nullable<Timestamp>,
        responded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    round_departments (round_id, department_id) {
        round_id -> Integer,
        department_id -> Integer,
        position -> Integer,
    }
}

diesel::table! {
    feedback (id) {
        id -> Integer,
        kind -> Text,
        round_id -> Nullable<Integer>,
        rating -> Nullable<Integer>,
        comment -> Nullable<Text>,
        author_name -> Nullable<Text>,
        author_email -> Nullable<Text>,
        status -> Text,
        submitted_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::joinable!(speakers -> departments (department_id));
diesel::joinable!(round_speakers -> rounds (round_id));
diesel::joinable!(round_speakers -> speakers (speaker_id));
diesel::joinable!(round_departments -> rounds (round_id));
diesel::joinable!(round_departments -> departments (department_id));
diesel::joinable!(feedback -> rounds (round_id));
diesel::joinable!(materials -> rounds (round_id));

diesel::table! {
    /// Bumped by trigger on every change to the schedule; see `cache`.
    schedule_revision (id) {
        id -> Integer,
        revision -> BigInt,
    }
}

diesel::table! {
    /// The answers of idempotent POSTs (see `idempotency`).
    idempotency_keys (caller, idempotency_key) {
        caller -> Text,
        idempotency_key -> Text,
        method -> Text,
        path -> Text,
        body_hash -> Text,
        status -> Integer,
        location -> Nullable<Text>,
        etag -> Nullable<Text>,
        body -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// The one record of the series (id 1): see `series`.
    series (id) {
        id -> Integer,
        name -> Text,
        description -> Nullable<Text>,
        timezone -> Text,
        default_location -> Nullable<Text>,
        default_start_time -> Text,
        default_duration_minutes -> Integer,
        contacts -> Text,
        version -> BigInt,
        updated_at -> Timestamp,
        updated_by -> Nullable<Text>,
        feedback_window_days -> Integer,
        /// RFC 5545 RRULE text, canonical (see `recurrence::rule`).
        recurrence -> Nullable<Text>,
        /// `YYYY-MM-DD`: what INTERVAL and COUNT count from.
        recurrence_start -> Nullable<Text>,
        attention_days -> Integer,
        /// `[{"date": "YYYY-MM-DD", "reason": ...}, ...]` by date: what plans skip.
        skipped_dates -> Text,
        /// `ama_pra_category_1`, `ancc_contact_hours`, `participation`; `NULL`: none.
        credit_type -> Nullable<Text>,
        /// `NULL`: a round's length, rounded to the quarter hour.
        default_credit_quarter_hours -> Nullable<Integer>,
        checkin_opens_minutes -> Integer,
        checkin_closes_minutes -> Integer,
        evaluation_required -> Bool,
    }
}

diesel::table! {
    /// The materials of rounds (see `materials`): a link, or a file in the file store.
    materials (id) {
        id -> Integer,
        round_id -> Integer,
        kind -> Text,
        title -> Text,
        url -> Nullable<Text>,
        visibility -> Text,
        position -> Integer,
        /// The file's key in the store; `NULL` until a file is uploaded.
        file_key -> Nullable<Text>,
        file_content_type -> Nullable<Text>,
        file_size -> Nullable<BigInt>,
        /// Hex SHA-256 of the file: its strong ETag.
        file_sha256 -> Nullable<Text>,
        file_uploaded_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    /// The change log: the audit trail, the change feed and the webhooks' source (`changelog`).
    changes (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor -> Text,
        resource -> Text,
        record_id -> Integer,
        action -> Text,
        #[sql_name = "changes"]
        changed_fields -> Text,
        data -> Nullable<Text>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    /// PostgreSQL only: the next change's number, taken under this row's lock.
    change_log_head (id) {
        id -> Integer,
        seq -> BigInt,
    }
}

diesel::table! {
    change_log_floor (id) {
        id -> Integer,
        purged_through -> BigInt,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Integer,
        url -> Text,
        events -> Text,
        description -> Nullable<Text>,
        enabled -> Bool,
        secret -> Text,
        disabled_reason -> Nullable<Text>,
        failed_messages -> Integer,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_messages (id) {
        id -> BigInt,
        /// The `webhook-id` of every attempt: `msg_<UUIDv7 of the change>_<webhook id>`.
        message_id -> Text,
        webhook_id -> Integer,
        change_seq -> BigInt,
        event_type -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        message_id -> BigInt,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> Integer,
    }
}

diesel::table! {
    /// The people who attend rounds (see `credit::attendees`).
    attendees (id) {
        id -> Integer,
        full_name -> Text,
        name_key -> Text,
        email -> Text,
        /// `email` folded to lower case: unique.
        email_key -> Text,
        profession -> Text,
        npi -> Nullable<Text>,
        /// The identity provider's subject: unique.
        sub -> Nullable<Text>,
        search_text -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    /// Each round's check-in code (see `credit::checkin`); it goes with its round.
    checkin_codes (round_id) {
        round_id -> Integer,
        code -> Text,
        created_at -> Timestamp,
        created_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// Who attended which round (see `credit::attendance`): never deleted, voided instead.
    attendance (id) {
        id -> Integer,
        round_id -> Integer,
        attendee_id -> Integer,
        method -> Text,
        attended_at -> Timestamp,
        received_at -> Timestamp,
        /// Unique: a retry with the same nonce is the same check-in.
        nonce -> Nullable<Text>,
        reason -> Nullable<Text>,
        claimed_quarter_hours -> Integer,
        credit_status -> Text,
        credit_note -> Nullable<Text>,
        credit_overridden -> Bool,
        evaluated_at -> Nullable<Timestamp>,
        voided_at -> Nullable<Timestamp>,
        void_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::joinable!(webhook_messages -> webhooks (webhook_id));
diesel::joinable!(checkin_codes -> rounds (round_id));
diesel::joinable!(attendance -> rounds (round_id));
diesel::joinable!(attendance -> attendees (attendee_id));
diesel::joinable!(webhook_attempts -> webhook_messages (message_id));

// Every table may meet every other in a query (a join written with `on`, or a subquery).
diesel::allow_tables_to_appear_in_same_query!(
    departments,
    speakers,
    rounds,
    round_speakers,
    round_departments,
    feedback,
    schedule_revision,
    idempotency_keys,
    series,
    changes,
    change_log_head,
    change_log_floor,
    webhooks,
    webhook_messages,
    webhook_attempts,
    materials,
    attendees,
    checkin_codes,
    attendance,
);
