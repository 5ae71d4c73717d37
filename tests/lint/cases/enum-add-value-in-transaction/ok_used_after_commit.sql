ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';
UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
