CREATE TABLE events (id bigint PRIMARY KEY, attempts int);
