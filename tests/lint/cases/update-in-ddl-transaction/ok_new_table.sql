-- lint: assume_in_transaction=true
CREATE TABLE orders (id bigint, currency text);
ALTER TABLE orders ADD COLUMN note text;
UPDATE orders SET currency = 'EUR' WHERE currency IS NULL;
