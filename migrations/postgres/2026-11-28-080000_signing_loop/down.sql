DROP TABLE outbox;
DROP TABLE confirmation_tokens;
DROP TABLE signatures;
DROP TABLE petition_versions;
DROP TABLE petition_targets;
DROP TABLE petitions;
