DROP INDEX signatures_by_signing_event;
ALTER TABLE signatures DROP COLUMN signing_event_id;
DROP INDEX signing_events_by_petition;
DROP TABLE signing_events;
