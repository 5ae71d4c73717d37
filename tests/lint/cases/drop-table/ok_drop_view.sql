DROP VIEW orders_view;
