ALTER TABLE orders ADD COLUMN status order_status;
