-- lint: assume_in_transaction=true
ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';
