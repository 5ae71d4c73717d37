-- umbau: ignore[drop-table] legacy table, backed up
ALTER TABLE documents ADD COLUMN a text;
