ALTER TABLE orders RENAME TO shop_orders;
