CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint REFERENCES orders (id));
CREATE INDEX ix_invoices_order_id ON invoices (order_id);
