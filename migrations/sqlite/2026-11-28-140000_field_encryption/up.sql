-- Field encryption at rest: one sealed check value per database tells at start-up whether the
-- data key file is the one the signers' fields were encrypted with. Existing rows are encrypted
-- by the application on its first start with a key (SQL cannot encrypt).
CREATE TABLE instance_checks (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
