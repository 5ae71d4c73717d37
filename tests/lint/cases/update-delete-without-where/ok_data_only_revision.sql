-- lint: assume_in_transaction=true
-- a revision that only changes data is a deliberate data migration
UPDATE orders SET shop_id = 1;
DELETE FROM sessions;
