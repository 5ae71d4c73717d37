ALTER DOMAIN positive_amount ADD CONSTRAINT positive CHECK (VALUE > 0);
