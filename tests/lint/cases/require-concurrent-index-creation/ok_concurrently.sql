CREATE INDEX CONCURRENTLY ix_documents_created_at ON documents (created_at);
