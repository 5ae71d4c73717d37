DROP INDEX IF EXISTS public.ix_orders_shop_id;
