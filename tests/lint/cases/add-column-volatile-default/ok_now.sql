ALTER TABLE documents ADD COLUMN created_at timestamptz DEFAULT now();
