VACUUM FULL documents;
