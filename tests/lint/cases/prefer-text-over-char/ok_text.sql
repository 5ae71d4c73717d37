CREATE TABLE shops (country text CHECK (length(country) = 2));
