CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE TABLE events (id bigint PRIMARY KEY, account_id int);
ALTER TABLE events ADD CONSTRAINT events_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
