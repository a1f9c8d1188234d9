// Written by hand to match migrations/sqlite and migrations/postgres (identical shapes).

diesel::table! {
    petitions (id) {
        id -> BigInt,
        slug -> Text,
        title -> Text,
        summary -> Text,
        status -> Text,
        goal -> Nullable<BigInt>,
        closes_at -> Nullable<Timestamp>,
        signature_count -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        email_subject -> Nullable<Text>,
        email_sender_name -> Nullable<Text>,
    }
}

diesel::table! {
    petition_targets (id) {
        id -> BigInt,
        petition_id -> BigInt,
        position -> Integer,
        name -> Text,
        role -> Text,
    }
}

diesel::table! {
    petition_versions (id) {
        id -> BigInt,
        petition_id -> BigInt,
        title -> Text,
        summary -> Text,
        body -> Text,
        text_sha256 -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    signatures (id) {
        id -> BigInt,
        petition_id -> BigInt,
        version_id -> BigInt,
        email_key -> Text,
        email -> Text,
        name -> Text,
        country -> Text,
        postal_code -> Nullable<Text>,
        comment -> Nullable<Text>,
        status -> Text,
        confirmation_emails -> Integer,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        invalidated_at -> Nullable<Timestamp>,
        invalidation_reason -> Nullable<Text>,
        invalidated_by -> Nullable<BigInt>,
        receipt_salt -> Nullable<Text>,
        commitment -> Nullable<Text>,
        disclosure -> Text,
        suspect_reason -> Nullable<Text>,
        client_hash -> Nullable<Text>,
        withdrawn_at -> Nullable<Timestamp>,
        wants_updates -> Bool,
        moderation_batch_id -> Nullable<BigInt>,
        email_domain -> Nullable<Text>,
        signing_event_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    confirmation_tokens (token_hash) {
        token_hash -> Text,
        signature_id -> BigInt,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        recipient -> Text,
        payload -> Text,
        signature_id -> Nullable<BigInt>,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        claim_id -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        role -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    petition_organizers (petition_id, user_id) {
        petition_id -> BigInt,
        user_id -> BigInt,
        added_at -> Timestamp,
    }
}

diesel::table! {
    user_sessions (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        csrf_token -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_failures (id) {
        id -> BigInt,
        subject -> Text,
        failed_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        user_id -> Nullable<BigInt>,
        petition_id -> Nullable<BigInt>,
        action -> Text,
        details -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    deliveries (id) {
        id -> BigInt,
        petition_id -> BigInt,
        recipient -> Text,
        signature_count -> BigInt,
        bundle_sha256 -> Text,
        merkle_root -> Text,
        manifest -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    delivery_leaves (delivery_id, position) {
        delivery_id -> BigInt,
        position -> BigInt,
        commitment -> Text,
    }
}

diesel::table! {
    moderation_batches (id) {
        id -> BigInt,
        petition_id -> BigInt,
        user_id -> Nullable<BigInt>,
        criteria -> Text,
        reason -> Text,
        affected -> BigInt,
        created_at -> Timestamp,
        reverted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    client_keys (day) {
        day -> Text,
        key -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    signing_events (id) {
        id -> BigInt,
        petition_id -> BigInt,
        label -> Text,
        network -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        max_signatures -> BigInt,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        removed_by -> Nullable<BigInt>,
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(signing_events -> petitions (petition_id));
diesel::joinable!(petition_targets -> petitions (petition_id));
diesel::joinable!(petition_versions -> petitions (petition_id));
diesel::joinable!(signatures -> petitions (petition_id));
diesel::joinable!(signatures -> petition_versions (version_id));
diesel::table! {
    instance_checks (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    instance (name) {
        name -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(confirmation_tokens -> signatures (signature_id));
diesel::joinable!(outbox -> signatures (signature_id));
diesel::joinable!(petition_organizers -> petitions (petition_id));
diesel::joinable!(petition_organizers -> users (user_id));
diesel::joinable!(user_sessions -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(audit_log -> petitions (petition_id));
diesel::joinable!(deliveries -> petitions (petition_id));
diesel::joinable!(delivery_leaves -> deliveries (delivery_id));

diesel::allow_tables_to_appear_in_same_query!(
    instance,
    instance_checks,
    petitions,
    petition_targets,
    petition_versions,
    signatures,
    confirmation_tokens,
    outbox,
    users,
    petition_organizers,
    user_sessions,
    api_tokens,
    login_failures,
    audit_log,
    deliveries,
    delivery_leaves,
    moderation_batches,
    client_keys,
    signing_events,
);
