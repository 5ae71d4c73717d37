VACUUM (FULL, ANALYZE) documents;
