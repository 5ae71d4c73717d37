-- lint: assume_in_transaction=true
CREATE TABLE invoices (total numeric);
ALTER TABLE invoices ADD CONSTRAINT ck_total CHECK (total >= 0) NOT VALID;
ALTER TABLE invoices VALIDATE CONSTRAINT ck_total;
