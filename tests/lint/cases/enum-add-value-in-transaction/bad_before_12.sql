-- lint: target_version=11 assume_in_transaction=true
ALTER TYPE order_status ADD VALUE 'refunded';
