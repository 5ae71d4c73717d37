ALTER TABLE documents ADD COLUMN status text NOT NULL DEFAULT 'new';
