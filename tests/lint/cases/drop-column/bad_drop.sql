ALTER TABLE documents DROP COLUMN legacy_ocr_text;
