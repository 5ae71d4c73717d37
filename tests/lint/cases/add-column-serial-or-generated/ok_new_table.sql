CREATE TABLE t (a int);
ALTER TABLE t ADD COLUMN id bigserial;
