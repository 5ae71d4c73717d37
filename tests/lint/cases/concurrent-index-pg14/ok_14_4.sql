-- lint: server_version_num=140004
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_orders_shop ON orders (shop_id);
