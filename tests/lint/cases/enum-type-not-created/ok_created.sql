CREATE TYPE order_status AS ENUM ('new', 'paid');
ALTER TABLE orders ADD COLUMN status order_status, ADD COLUMN note varchar(20), ADD COLUMN at timestamptz, ADD COLUMN d double precision, ADD COLUMN j jsonb;
