-- Facts about the instance that every process on this database must agree on, one row each.
-- `serve` records the public base URL it serves under ('base_url'), so that the command line
-- puts the same one into bundles, dossiers and printed links.
CREATE TABLE instance (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
