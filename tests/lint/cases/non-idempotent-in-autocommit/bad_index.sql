-- lint: revision=true
CREATE INDEX CONCURRENTLY ix_orders_shop_id ON orders (shop_id);
