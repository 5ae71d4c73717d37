DROP INDEX ix_documents_created_at;
