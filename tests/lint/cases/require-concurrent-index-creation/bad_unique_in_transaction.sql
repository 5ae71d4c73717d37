BEGIN;
CREATE UNIQUE INDEX ix_users_email ON users (email);
COMMIT;
