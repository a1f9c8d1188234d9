-- The disclosure column replaced the public/not-public flag; nothing reads it any more.
ALTER TABLE signatures DROP COLUMN public;
