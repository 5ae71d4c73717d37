-- lint: server_version_num=140003
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_shop ON orders (shop_id);
