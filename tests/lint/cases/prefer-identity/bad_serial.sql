CREATE TABLE shops (id bigserial PRIMARY KEY);
