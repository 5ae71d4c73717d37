-- umbau: ignore[drop-column] not this one
DROP TABLE t;
