ALTER TABLE invoices ADD CONSTRAINT ck_total CHECK (total >= 0);
