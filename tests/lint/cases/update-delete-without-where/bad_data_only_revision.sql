-- lint: assume_in_transaction=true
-- a data-only revision too: every row in one transaction (umbau backfill batches it)
UPDATE orders SET shop_id = 1;
DELETE FROM sessions;
