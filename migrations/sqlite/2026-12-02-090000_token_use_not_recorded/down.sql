ALTER TABLE confirmation_tokens ADD COLUMN used_at TIMESTAMP;
