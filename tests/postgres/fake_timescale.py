"""A stand-in for the few TimescaleDB objects mdplatform.pg calls, in a plain PostgreSQL test database.

TimescaleDB cannot be installed on these machines. These stubs have the names, argument names and result types of
the TimescaleDB API as its documentation gives them (show_chunks, drop_chunks, remove_retention_policy,
refresh_continuous_aggregate, timescaledb_information.hypertables / .chunks), and the documented behaviour the code
relies on: drop_chunks/show_chunks take the chunks whose time range ends at or before ``older_than``; the refresh
refuses to run in a transaction block (a procedure that COMMITs fails inside one, as the real one does). Each call is
recorded in ``ts_calls`` (times as UTC text), so a test sees which statements the code ran, on a server that runs
them. ``mdp_timescale()`` (the migrations' test for the extension) is made to answer true.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

__all__ = ["add_chunk", "install", "ts_calls"]

_FAKE = """
CREATE OR REPLACE FUNCTION mdp_timescale() RETURNS BOOLEAN LANGUAGE sql STABLE AS $$ SELECT TRUE $$;
CREATE TABLE ts_calls (n SERIAL PRIMARY KEY, call TEXT NOT NULL, args TEXT[] NOT NULL);
CREATE SCHEMA timescaledb_information;
CREATE SCHEMA _fake_chunks;
CREATE TABLE fake_chunks (hypertable TEXT, chunk_name TEXT, range_start TIMESTAMPTZ, range_end TIMESTAMPTZ);
CREATE VIEW timescaledb_information.hypertables AS
    SELECT 'public'::name AS hypertable_schema, table_name::name AS hypertable_name FROM mdp_time_tables;
CREATE VIEW timescaledb_information.chunks AS
    SELECT 'public'::name AS hypertable_schema, hypertable::name AS hypertable_name,
           '_fake_chunks'::name AS chunk_schema, chunk_name::name, range_start, range_end FROM fake_chunks;
CREATE FUNCTION show_chunks(relation REGCLASS, older_than TIMESTAMPTZ) RETURNS SETOF REGCLASS LANGUAGE sql AS $$
    SELECT ('_fake_chunks.' || quote_ident(chunk_name))::regclass FROM fake_chunks
    WHERE hypertable = relation::text AND range_end <= older_than ORDER BY range_start
$$;
CREATE FUNCTION drop_chunks(relation REGCLASS, older_than TIMESTAMPTZ) RETURNS SETOF TEXT LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
    col TEXT := (SELECT time_column FROM mdp_time_tables WHERE table_name = relation::text);
BEGIN
    INSERT INTO ts_calls (call, args)
    VALUES ('drop_chunks', ARRAY[relation::text, (older_than AT TIME ZONE 'UTC')::text]);
    FOR c IN SELECT * FROM fake_chunks WHERE hypertable = relation::text AND range_end <= older_than LOOP
        EXECUTE format('DELETE FROM %s WHERE %I >= $1 AND %I < $2', relation, col, col)
            USING c.range_start, c.range_end;
        EXECUTE format('DROP TABLE _fake_chunks.%I', c.chunk_name);
        DELETE FROM fake_chunks f WHERE f.chunk_name = c.chunk_name;
        RETURN NEXT '_fake_chunks.' || c.chunk_name;
    END LOOP;
END
$$;
CREATE FUNCTION remove_retention_policy(relation REGCLASS, if_exists BOOLEAN = FALSE) RETURNS VOID LANGUAGE sql AS $$
    INSERT INTO ts_calls (call, args) VALUES ('remove_retention_policy', ARRAY[relation::text, if_exists::text])
$$;
CREATE PROCEDURE refresh_continuous_aggregate(continuous_aggregate REGCLASS, window_start TIMESTAMPTZ,
                                              window_end TIMESTAMPTZ) LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ts_calls (call, args)
    VALUES ('refresh_continuous_aggregate', ARRAY[continuous_aggregate::text, (window_start AT TIME ZONE 'UTC')::text,
                  (window_end AT TIME ZONE 'UTC')::text]);
    COMMIT;  -- "invalid transaction termination" inside a transaction block, as the real procedure refuses it
END
$$;
"""


def install(dsn: str) -> None:
    """Make the (migrated, plain) database at ``dsn`` look like TimescaleDB to mdplatform.pg."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_FAKE)


def add_chunk(dsn: str, hypertable: str, name: str, start: datetime, end: datetime) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE _fake_chunks.{name} ()")
        conn.execute("INSERT INTO fake_chunks VALUES (%s, %s, %s, %s)", [hypertable, name, start, end])


def ts_calls(dsn: str) -> list[tuple[str, list[str]]]:
    with psycopg.connect(dsn) as conn:
        return [(c, a) for c, a in conn.execute("SELECT call, args FROM ts_calls ORDER BY n").fetchall()]
