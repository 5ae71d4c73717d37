-- lint: server_version_num=140000
REINDEX INDEX CONCURRENTLY ix_orders_shop;
