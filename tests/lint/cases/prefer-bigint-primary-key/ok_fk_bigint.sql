CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
CREATE TABLE events (id bigint PRIMARY KEY, account_id bigint REFERENCES accounts);
ALTER TABLE events ADD COLUMN parent_id bigint, ADD CONSTRAINT events_parent_fk FOREIGN KEY (parent_id) REFERENCES events (id);
