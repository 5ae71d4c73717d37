-- lint: revision=true assume_in_transaction=true
CREATE INDEX ix_orders_shop_id ON orders (shop_id);
