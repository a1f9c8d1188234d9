-- A confirmation token's use was recorded in used_at and never read: the signature's status
-- and confirmed_at say that and when it was confirmed. Writing it cost the signature writer a
-- statement and a random page of the tokens' table per confirmation.
ALTER TABLE confirmation_tokens DROP COLUMN used_at;
