-- The domain of the normalised email address (after '@' of email_key), for the per-domain
-- rate limit and bulk invalidation by domain.
ALTER TABLE signatures ADD COLUMN email_domain TEXT;
UPDATE signatures SET email_domain = split_part(email_key, '@', 2);
-- Rate limits count a petition's recent signatures per domain and per client.
CREATE INDEX signatures_by_domain ON signatures (petition_id, email_domain, created_at);
CREATE INDEX signatures_by_client_time ON signatures (petition_id, client_hash, created_at);
