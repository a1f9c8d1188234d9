-- Organizers and admins. Emails are stored lowercased; passwords only as argon2id hashes.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'organizer')),
    password_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- A petition may have several organizers (coalitions share one petition).
CREATE TABLE petition_organizers (
    petition_id BIGINT NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (petition_id, user_id)
);
CREATE INDEX petition_organizers_by_user ON petition_organizers (user_id);

-- Sign-in sessions. The cookie carries the token (encrypted); only its SHA-256 is stored,
-- so sessions can be ended server-side (sign-out, password change, expiry).
CREATE TABLE user_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

-- Failed sign-ins, for throttling across instances. The subject is a keyed hash of the
-- account's email or of the client's address, never the value itself.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    failed_at TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_by_subject ON login_failures (subject, failed_at);

-- Who did what in the private workspace.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    petition_id BIGINT REFERENCES petitions (id) ON DELETE CASCADE,
    action TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_by_petition ON audit_log (petition_id, id);

-- Moderation: an invalidated signature stops counting; undoing restores its earlier status.
ALTER TABLE signatures ADD COLUMN invalidated_at TIMESTAMP;
ALTER TABLE signatures ADD COLUMN invalidation_reason TEXT;
ALTER TABLE signatures ADD COLUMN invalidated_by BIGINT REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX signatures_by_petition_created ON signatures (petition_id, created_at);
