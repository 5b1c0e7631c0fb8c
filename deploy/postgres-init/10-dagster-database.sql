-- Run by the timescaledb image on the first start of an empty `pg` volume only (docker-entrypoint-initdb.d), as
-- POSTGRES_USER: the database Dagster keeps its runs, event logs and sensor cursors in, apart from `mdp`.
CREATE DATABASE dagster;
