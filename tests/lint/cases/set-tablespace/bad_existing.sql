ALTER TABLE documents SET TABLESPACE fast_ssd;
