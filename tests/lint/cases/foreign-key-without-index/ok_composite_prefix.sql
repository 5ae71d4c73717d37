CREATE TABLE lines (order_id bigint, n int, PRIMARY KEY (order_id, n), FOREIGN KEY (order_id) REFERENCES orders (id));
