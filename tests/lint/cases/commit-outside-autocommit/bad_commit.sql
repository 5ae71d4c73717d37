-- lint: revision=true
ALTER TABLE orders ADD COLUMN shop_id bigint;
COMMIT;
UPDATE orders SET shop_id = 1 WHERE shop_id IS NULL;
