ALTER TABLE orders ADD COLUMN shop_id bigint REFERENCES shops (id);
