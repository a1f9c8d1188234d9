DROP INDEX signatures_by_client_time;
DROP INDEX signatures_by_domain;
ALTER TABLE signatures DROP COLUMN email_domain;
