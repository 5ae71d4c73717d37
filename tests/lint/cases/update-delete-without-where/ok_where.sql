UPDATE orders SET shop_id = 1 WHERE shop_id IS NULL AND id < 10000;
