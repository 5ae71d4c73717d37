ALTER TABLE sessions DROP COLUMN legacy_token;
DELETE FROM sessions;
