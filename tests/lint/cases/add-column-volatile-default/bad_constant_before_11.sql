-- lint: target_version=10
ALTER TABLE documents ADD COLUMN status text NOT NULL DEFAULT 'new';
