-- lint: assume_in_transaction=true
UPDATE orders SET shop_id = 1;
CREATE INDEX ix_orders_shop_id ON orders (shop_id);
