ALTER TABLE documents ADD COLUMN status text;
