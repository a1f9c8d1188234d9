ALTER TABLE signatures ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE signatures SET public = (disclosure = 'public');
