CREATE INDEX ix_documents_created_at ON documents (created_at);
