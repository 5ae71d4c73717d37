"""Everything PostgreSQL-specific: connections and error mapping, advisory locks,
the history table, catalog queries and the embedded server."""
