ALTER TABLE orders ADD CONSTRAINT fk_orders_shop_id FOREIGN KEY (shop_id) REFERENCES shops (id);
