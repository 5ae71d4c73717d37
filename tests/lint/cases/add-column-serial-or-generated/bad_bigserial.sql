ALTER TABLE documents ADD COLUMN seq_no bigserial;
