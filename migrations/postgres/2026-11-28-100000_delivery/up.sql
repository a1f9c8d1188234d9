-- Signer receipts: at confirmation a signature gets a commitment, SHA-256 over a secret random
-- salt and the signature's content. The commitment is the signer's receipt and a leaf of the
-- Merkle tree in every delivery bundle; the salt never leaves the database.
ALTER TABLE signatures ADD COLUMN receipt_salt TEXT;
ALTER TABLE signatures ADD COLUMN commitment TEXT;
CREATE INDEX signatures_by_commitment ON signatures (commitment);

-- Exports and bundles walk a petition's confirmed signatures in id order, a batch at a time.
-- On PostgreSQL the (petition_id, status) index does not order by id; this one does, and it
-- serves every query the old one served.
DROP INDEX signatures_by_petition_status;
CREATE INDEX signatures_by_petition_status_id ON signatures (petition_id, status, id);

-- Each hand-over of a petition: to whom, when, how many signatures, and what exactly.
CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    petition_id BIGINT NOT NULL REFERENCES petitions (id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    signature_count BIGINT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    merkle_root TEXT NOT NULL,
    -- The signed manifest exactly as in the bundle.
    manifest TEXT NOT NULL,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX deliveries_by_petition ON deliveries (petition_id, id);

-- The Merkle tree's leaves of a delivery in order, so inclusion proofs can be served later
-- even when signatures change after the hand-over.
CREATE TABLE delivery_leaves (
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    commitment TEXT NOT NULL,
    PRIMARY KEY (delivery_id, position)
);
CREATE INDEX delivery_leaves_by_commitment ON delivery_leaves (delivery_id, commitment);
