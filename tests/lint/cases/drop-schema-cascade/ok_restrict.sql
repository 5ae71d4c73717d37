DROP SCHEMA legacy;
