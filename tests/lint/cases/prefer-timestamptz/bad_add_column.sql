ALTER TABLE orders ADD COLUMN paid_at timestamp without time zone;
