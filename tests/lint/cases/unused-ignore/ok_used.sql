-- umbau: ignore[drop-table] legacy table, backed up
DROP TABLE legacy_sessions;
