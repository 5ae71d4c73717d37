ALTER TABLE customers RENAME COLUMN email TO email_address;
