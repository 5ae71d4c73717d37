CREATE TABLE events (a int);
ALTER TABLE events SET ACCESS METHOD columnar;
