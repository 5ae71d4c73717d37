-- lint: assume_in_transaction=true
DROP INDEX CONCURRENTLY ix_a;
