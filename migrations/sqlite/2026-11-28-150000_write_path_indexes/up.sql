-- The outbox worker claims the oldest unsent emails (ORDER BY id). With an index on
-- next_attempt_at, SQLite walked the table in id order from the first row, past every email
-- already sent: 30 ms per claim at 100,000 rows, holding the write lock the signature writer
-- waits for. Indexing the unsent rows by id makes a claim read only those.
DROP INDEX outbox_due;
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL AND failed_at IS NULL;
-- A prefix of signatures_by_client_time (petition_id, client_hash, created_at), which serves
-- every query it served; one index fewer to update per signing.
DROP INDEX signatures_by_client;
