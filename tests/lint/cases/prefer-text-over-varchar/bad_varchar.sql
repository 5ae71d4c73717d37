ALTER TABLE customers ADD COLUMN vat_id varchar(32);
