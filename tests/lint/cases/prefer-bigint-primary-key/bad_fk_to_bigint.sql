CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
CREATE TABLE events (id bigint PRIMARY KEY, account_id integer REFERENCES accounts);
