CREATE TYPE order_status AS ENUM ('new', 'paid');
ALTER TYPE order_status RENAME TO order_status_old;
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
