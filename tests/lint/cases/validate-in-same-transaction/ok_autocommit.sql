-- outside a transaction block (psql's default) each statement commits on its own
ALTER TABLE orders ADD CONSTRAINT fk_shop FOREIGN KEY (shop_id) REFERENCES shops (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT fk_shop;
