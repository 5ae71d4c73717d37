VACUUM (ANALYZE) documents;
