-- umbau: ignore[drop-table]
DROP TABLE legacy_sessions;
