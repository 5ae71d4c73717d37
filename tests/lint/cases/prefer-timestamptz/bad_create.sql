CREATE TABLE events (at timestamp);
