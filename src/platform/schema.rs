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
        /// A copy of the round's initiatives, kept as `speakers_doc` is from
        /// `initiative_rounds` and `initiatives`: `[[initiative_id, title], ...]` by id.
        initiatives_doc -> Text,
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
diesel::joinable!(disclosure_relationships -> disclosures (disclosure_id));
diesel::joinable!(disclosures -> speakers (speaker_id));

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
        loop_alert_days -> Integer,
        /// RFC 5545 RRULE text, canonical (see `recurrence::rule`).
        recurrence -> Nullable<Text>,
        /// `YYYY-MM-DD`: what INTERVAL and COUNT count from.
        recurrence_start -> Nullable<Text>,
        attention_days -> Integer,
        /// `[{"date": "YYYY-MM-DD", "reason": ...}, ...]` by date: what plans skip.
        skipped_dates -> Text,
        /// `[{"speaker_id": 7, "role": "planner"}, ...]` in order (see `series`).
        planners -> Text,
        disclosure_valid_months -> Integer,
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
    /// Every attestation of a speaker's financial relationships (see `disclosure::relationships`).
    disclosures (id) {
        id -> Integer,
        speaker_id -> Integer,
        attested_at -> Timestamp,
        no_relationships -> Bool,
        created_at -> Timestamp,
        created_by -> Nullable<Text>,
    }
}

diesel::table! {
    disclosure_relationships (id) {
        id -> Integer,
        disclosure_id -> Integer,
        position -> Integer,
        company -> Text,
        nature -> Text,
        other_detail -> Nullable<Text>,
        /// `YYYY-MM-DD`.
        started_on -> Text,
        ended_on -> Nullable<Text>,
    }
}

diesel::table! {
    /// A round's judgement of one relationship (see `disclosure::reviews`).
    disclosure_reviews (round_id, relationship_id) {
        round_id -> Integer,
        relationship_id -> Integer,
        relevant -> Bool,
        mitigation -> Nullable<Text>,
        note -> Nullable<Text>,
        reviewed_at -> Timestamp,
        reviewed_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// The published versions of rounds' disclosure statements, frozen (see
    /// `disclosure::statements`).
    disclosure_statements (id) {
        id -> Integer,
        round_id -> Integer,
        version -> Integer,
        published_at -> Timestamp,
        published_by -> Nullable<Text>,
        text -> Text,
        content -> Text,
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
    /// The newest change's number; `changelog::number` takes turns under this row's lock.
    change_log_head (id) {
        id -> Integer,
        seq -> BigInt,
    }
}

diesel::table! {
    /// Change-log entries written but not yet numbered (`changelog::number` moves them to
    /// `changes`), with the webhook message each will send.
    change_log_queue (id) {
        id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        resource -> Text,
        record_id -> Integer,
        action -> Text,
        #[sql_name = "changes"]
        changed_fields -> Text,
        data -> Nullable<Text>,
        request_id -> Nullable<Text>,
        event -> Text,
        message -> Text,
        message_prefix -> Text,
        match_event -> Nullable<Text>,
        match_resource -> Nullable<Text>,
        match_any -> Nullable<Text>,
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
    initiatives (id) {
        id -> Integer,
        title -> Text,
        problem_statement -> Nullable<Text>,
        aim_statement -> Nullable<Text>,
        aim_target -> Nullable<Double>,
        aim_target_date -> Nullable<Date>,
        stage -> Text,
        status -> Text,
        closing_note -> Nullable<Text>,
        progress_score -> Nullable<Double>,
        determination -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    initiative_team (initiative_id, position) {
        initiative_id -> Integer,
        position -> Integer,
        name -> Text,
        email -> Text,
        speaker_id -> Nullable<Integer>,
        role -> Text,
    }
}

diesel::table! {
    initiative_departments (initiative_id, department_id) {
        initiative_id -> Integer,
        department_id -> Integer,
        position -> Integer,
    }
}

diesel::table! {
    initiative_rounds (initiative_id, round_id) {
        initiative_id -> Integer,
        round_id -> Integer,
        purpose -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    pdsa_cycles (id) {
        id -> Integer,
        initiative_id -> Integer,
        number -> Integer,
        change_idea -> Text,
        objective -> Nullable<Text>,
        prediction -> Nullable<Text>,
        /// `{who, what, when, where, data_collection}` as JSON.
        plan -> Nullable<Text>,
        do_notes -> Nullable<Text>,
        carried_out_as_planned -> Nullable<Bool>,
        study_notes -> Nullable<Text>,
        prediction_confirmed -> Nullable<Text>,
        act_decision -> Nullable<Text>,
        next_steps -> Nullable<Text>,
        round_id -> Nullable<Integer>,
        stage -> Text,
        decided_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    measures (id) {
        id -> Integer,
        initiative_id -> Integer,
        name -> Text,
        #[sql_name = "type"]
        measure_type -> Text,
        operational_definition -> Nullable<Text>,
        data_type -> Text,
        unit -> Nullable<Text>,
        multiplier -> Double,
        frequency -> Text,
        improvement_direction -> Text,
        target -> Nullable<Double>,
        baseline_from -> Nullable<Date>,
        baseline_to -> Nullable<Date>,
        /// `[{start_period, reason}, ...]` as JSON.
        phases -> Text,
        rules -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    data_points (id) {
        id -> Integer,
        measure_id -> Integer,
        period -> Date,
        value -> Double,
        numerator -> Nullable<Double>,
        denominator -> Nullable<Double>,
        excluded -> Bool,
        exclusion_reason -> Nullable<Text>,
        astronomical -> Bool,
        note -> Nullable<Text>,
        pdsa_cycle_id -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::table! {
    round_outcomes (id) {
        id -> Integer,
        round_id -> Integer,
        position -> Integer,
        kind -> Text,
        text -> Text,
        rationale -> Nullable<Text>,
        initiative_id -> Nullable<Integer>,
        pdsa_cycle_id -> Nullable<Integer>,
        corrects_id -> Nullable<Integer>,
        owner_name -> Nullable<Text>,
        owner_email -> Nullable<Text>,
        owner_email_key -> Nullable<Text>,
        owner_speaker_id -> Nullable<Integer>,
        due_date -> Nullable<Date>,
        status -> Nullable<Text>,
        completed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Nullable<Text>,
        updated_by -> Nullable<Text>,
        version -> BigInt,
    }
}

diesel::joinable!(initiative_team -> initiatives (initiative_id));
diesel::joinable!(initiative_departments -> initiatives (initiative_id));
diesel::joinable!(initiative_rounds -> initiatives (initiative_id));
diesel::joinable!(initiative_rounds -> rounds (round_id));
diesel::joinable!(pdsa_cycles -> initiatives (initiative_id));
diesel::joinable!(measures -> initiatives (initiative_id));
diesel::joinable!(data_points -> measures (measure_id));
diesel::joinable!(round_outcomes -> rounds (round_id));

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
diesel::table! {
    /// Sign-ins to the pages under way (see `site::session`), by the digest of their `state`.
    page_signins (state_digest) {
        state_digest -> Text,
        verifier -> Text,
        next_path -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// The pages' sessions (see `site::session`), by the digest of the cookie's id.
    page_sessions (id_digest) {
        id_digest -> Text,
        sub -> Text,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        role -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

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
    change_log_queue,
    change_log_floor,
    webhooks,
    webhook_messages,
    webhook_attempts,
    initiatives,
    initiative_team,
    initiative_departments,
    initiative_rounds,
    pdsa_cycles,
    measures,
    data_points,
    round_outcomes,
    materials,
    disclosures,
    disclosure_relationships,
    disclosure_reviews,
    disclosure_statements,
    attendees,
    checkin_codes,
    attendance,
);
