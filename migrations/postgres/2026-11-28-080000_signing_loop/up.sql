-- Timestamps are UTC, set by the application (never by SQL defaults, whose precision differs
-- between SQLite and PostgreSQL).
CREATE TABLE petitions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('draft', 'open', 'closed', 'delivered')),
    goal BIGINT CHECK (goal IS NULL OR goal > 0),
    closes_at TIMESTAMP,
    -- Confirmed signatures, changed in the same transaction as the status it counts.
    signature_count BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE petition_targets (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    petition_id BIGINT NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT ''
);
CREATE INDEX petition_targets_by_petition ON petition_targets (petition_id, position);

-- Every change of a petition's text is a new version; a signature points at the one its signer saw.
CREATE TABLE petition_versions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    petition_id BIGINT NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    body TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX petition_versions_by_petition ON petition_versions (petition_id, id);

CREATE TABLE signatures (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    petition_id BIGINT NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    version_id BIGINT NOT NULL REFERENCES petition_versions (id),
    -- The normalised address: one signature per petition and key.
    email_key TEXT NOT NULL,
    -- The address as typed, used for sending.
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    country TEXT NOT NULL,
    postal_code TEXT,
    comment TEXT,
    public BOOLEAN NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'suspect', 'invalidated', 'withdrawn')),
    confirmation_emails INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (petition_id, email_key)
);
CREATE INDEX signatures_by_petition_status ON signatures (petition_id, status);

-- Only the SHA-256 of a confirmation token is stored. A signer may hold several valid links
-- (one per confirmation email), so tokens have their own table.
CREATE TABLE confirmation_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    signature_id BIGINT NOT NULL REFERENCES signatures (id) ON DELETE CASCADE,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX confirmation_tokens_by_signature ON confirmation_tokens (signature_id);

-- Durable email queue, written in the same transaction as the change that causes the email.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature_id BIGINT REFERENCES signatures (id) ON DELETE SET NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A worker's claim: nobody else sends the row until the lease runs out.
    locked_until TIMESTAMP,
    claim_id TEXT,
    sent_at TIMESTAMP,
    failed_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_by_signature ON outbox (signature_id);
