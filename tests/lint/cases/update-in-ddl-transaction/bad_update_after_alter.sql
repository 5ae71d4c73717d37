-- lint: assume_in_transaction=true
ALTER TABLE orders ADD COLUMN currency text;
UPDATE orders SET currency = 'EUR' WHERE currency IS NULL AND id < 100000;
