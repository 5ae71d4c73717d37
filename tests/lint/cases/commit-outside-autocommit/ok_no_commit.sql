-- lint: revision=true
ALTER TABLE orders ADD COLUMN shop_id bigint;
SAVEPOINT s;
RELEASE SAVEPOINT s;
