REINDEX TABLE documents;
