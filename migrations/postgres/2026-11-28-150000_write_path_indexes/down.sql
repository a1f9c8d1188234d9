CREATE INDEX signatures_by_client ON signatures (petition_id, client_hash);
DROP INDEX outbox_unsent;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
