ALTER TABLE events ADD COLUMN account_id integer REFERENCES accounts (id);
