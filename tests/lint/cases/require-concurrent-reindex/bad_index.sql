REINDEX INDEX ix_invoices_due_date;
