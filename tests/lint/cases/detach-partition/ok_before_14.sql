-- lint: target_version=13
ALTER TABLE events DETACH PARTITION events_2023;
