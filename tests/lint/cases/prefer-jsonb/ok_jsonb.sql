ALTER TABLE documents ADD COLUMN ocr_result jsonb;
