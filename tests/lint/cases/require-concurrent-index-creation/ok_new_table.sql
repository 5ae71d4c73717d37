CREATE TABLE tags (id bigint PRIMARY KEY, name text);
CREATE INDEX ix_tags_name ON tags (name);
