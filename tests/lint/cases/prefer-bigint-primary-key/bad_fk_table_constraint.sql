CREATE TABLE accounts (id integer PRIMARY KEY);
CREATE TABLE events (id bigint PRIMARY KEY, account_id smallint NOT NULL,
                     CONSTRAINT events_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id));
