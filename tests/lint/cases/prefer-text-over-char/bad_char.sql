CREATE TABLE shops (country char(2));
