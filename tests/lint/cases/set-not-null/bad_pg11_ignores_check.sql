-- lint: target_version=11
ALTER TABLE orders ADD CONSTRAINT ck_shop_nn CHECK (shop_id IS NOT NULL) NOT VALID;
COMMIT;
ALTER TABLE orders VALIDATE CONSTRAINT ck_shop_nn;
ALTER TABLE orders ALTER COLUMN shop_id SET NOT NULL;
