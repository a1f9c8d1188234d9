DROP TABLE delivery_leaves;
DROP TABLE deliveries;
DROP INDEX signatures_by_commitment;
DROP INDEX signatures_by_petition_status_id;
CREATE INDEX signatures_by_petition_status ON signatures (petition_id, status);
ALTER TABLE signatures DROP COLUMN commitment;
ALTER TABLE signatures DROP COLUMN receipt_salt;
