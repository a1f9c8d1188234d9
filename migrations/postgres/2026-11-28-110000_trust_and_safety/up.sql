-- How a signer's name may appear: 'public' (listed on the site and in the bundle),
-- 'recipients' (in the delivery bundle only) or 'count_only' (counted and provable by
-- receipt, never listed anywhere). Replaces the old public/not-public flag.
ALTER TABLE signatures ADD COLUMN disclosure TEXT NOT NULL DEFAULT 'recipients'
    CHECK (disclosure IN ('public', 'recipients', 'count_only'));
UPDATE signatures SET disclosure = CASE WHEN public THEN 'public' ELSE 'recipients' END;


-- Why a signature was held back as suspect ('limited', 'honeypot', 'too_fast', 'disposable');
-- a suspect signature counts only once an organizer accepts it.
ALTER TABLE signatures ADD COLUMN suspect_reason TEXT;
-- A keyed hash of the client's address under a key that changes every day (client_keys);
-- kept for rate limiting and fraud analysis, erased after 7 days.
ALTER TABLE signatures ADD COLUMN client_hash TEXT;
-- Withdrawn by the signer: personal fields are erased, the row stays so counts and earlier
-- bundles remain explainable.
ALTER TABLE signatures ADD COLUMN withdrawn_at TIMESTAMP;
-- The signer asked to hear about the petition's outcome: their email is kept past retention.
ALTER TABLE signatures ADD COLUMN wants_updates BOOLEAN NOT NULL DEFAULT FALSE;
-- The bulk invalidation that invalidated this signature, so the whole batch can be undone.
ALTER TABLE signatures ADD COLUMN moderation_batch_id BIGINT;
CREATE INDEX signatures_by_client ON signatures (petition_id, client_hash);

CREATE TABLE moderation_batches (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    petition_id BIGINT NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    criteria TEXT NOT NULL,
    reason TEXT NOT NULL,
    affected BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    reverted_at TIMESTAMP
);
CREATE INDEX moderation_batches_by_petition ON moderation_batches (petition_id, id);

-- The daily keys of client address hashes; a day's key is deleted with its hashes.
CREATE TABLE client_keys (
    day TEXT PRIMARY KEY NOT NULL,
    key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Discreet emails, for signers whose inbox may be watched: a neutral subject and sender name
-- used instead of the petition's title.
ALTER TABLE petitions ADD COLUMN email_subject TEXT;
ALTER TABLE petitions ADD COLUMN email_sender_name TEXT;
