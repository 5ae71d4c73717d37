ALTER TABLE documents ADD COLUMN seq_no bigint;
