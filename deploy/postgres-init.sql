-- Run once by the postgres image on an empty data directory: the ledger gets a database of its own
-- (its Alembic version table and Dagster's must not share one).
CREATE DATABASE ledger OWNER mienne;
