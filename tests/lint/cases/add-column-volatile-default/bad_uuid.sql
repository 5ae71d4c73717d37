ALTER TABLE documents ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
