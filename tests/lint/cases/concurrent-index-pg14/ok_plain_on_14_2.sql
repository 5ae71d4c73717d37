-- lint: server_version_num=140002
CREATE INDEX ix_orders_shop ON orders (shop_id);
