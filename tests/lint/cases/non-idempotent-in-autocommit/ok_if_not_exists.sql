-- lint: revision=true
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_shop_id ON orders (shop_id);
DROP INDEX CONCURRENTLY IF EXISTS ix_orders_old;
