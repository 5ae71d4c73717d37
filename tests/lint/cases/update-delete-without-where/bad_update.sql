ALTER TABLE orders ADD COLUMN shop_id bigint;
UPDATE orders SET shop_id = 1;
