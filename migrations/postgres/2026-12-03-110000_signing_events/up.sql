-- Signing events that organizers vouch for: signatures from the event's network within its
-- window are not held back by the per-client rate limit (up to max_signatures).
CREATE TABLE signing_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    petition_id BIGINT NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    -- What the organizers call it ("Coalition meeting, Oslo").
    label TEXT NOT NULL,
    -- A single client address or a CIDR network, in canonical form ("203.0.113.0/24").
    network TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    -- At most this many signatures are vouched for; later ones face the per-client limit again.
    max_signatures BIGINT NOT NULL,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    -- Removed events vouch for nothing more but stay listed, with who removed them.
    removed_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    removed_at TIMESTAMP
);
CREATE INDEX signing_events_by_petition ON signing_events (petition_id, ends_at);

-- The signing event that let this signature past the per-client limit. No foreign key:
-- events are never deleted but with their petition, and SQLite cannot drop a column that
-- has one.
ALTER TABLE signatures ADD COLUMN signing_event_id BIGINT;
CREATE INDEX signatures_by_signing_event ON signatures (signing_event_id)
    WHERE signing_event_id IS NOT NULL;
