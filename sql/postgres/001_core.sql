-- PostgreSQL / TimescaleDB sink of the derived tables (same tables and columns as sql/duckdb), applied in order by
-- `mdp db migrate` (mdplatform.pg.migrate), which records each file in schema_migrations. An applied file is never
-- edited: a change is a new NNN_*.sql file.
--
-- One set of files serves both servers, chosen at migrate time by whether the `timescaledb` extension exists in
-- the database (the DO blocks below): with it, time tables become hypertables with compression, retention and
-- continuous aggregates; without it (plain PostgreSQL 15, as on the development machines and CI), they stay plain
-- tables with a BRIN index on time, retention is a DELETE run by mdp_enforce_retention(), and the dashboards'
-- aggregates are ordinary views of the same names. Only the plain path is exercised by the tests: the TimescaleDB
-- calls (create_hypertable/by_range, ALTER TABLE ... SET (timescaledb.compress...), add_compression_policy,
-- add_retention_policy, remove_retention_policy, continuous aggregates and their refresh policy) are checked
-- against TimescaleDB 2.13+ documentation only, as no TimescaleDB server can be installed here.
--
-- Exact numbers: prices and sizes are NUMERIC(38,12), quote amounts NUMERIC(38,18), as in DuckDB and the lake
-- (polars Decimal). A binary float cannot hold 0.1 exactly, and sums of many sizes drift from the exchange's
-- figures; NUMERIC keeps every exchange string and every sum exact. Book metrics (mid, spread, depth, imbalance) are
-- float64 by design: they are derived ratios and averages, never summed back into amounts (mdplatform/book).
--
-- Loads replace a time window per partition (DELETE of the window, then binary COPY, in one transaction): every
-- time table has an index leading with, or a chunking on, its window column so that DELETE finds the window.

-- Per time table: its window column, chunk interval and policies. drop_after is the retention (NULL: kept forever);
-- change it with mdp_set_retention(table, interval), never by editing a migration.
CREATE TABLE IF NOT EXISTS mdp_time_tables (
    table_name     TEXT PRIMARY KEY,
    time_column    TEXT     NOT NULL,
    chunk_interval INTERVAL NOT NULL,
    segment_by     TEXT,      -- TimescaleDB compression segments (NULL: not compressed)
    compress_after INTERVAL,
    drop_after     INTERVAL
);

CREATE OR REPLACE FUNCTION mdp_timescale() RETURNS BOOLEAN LANGUAGE sql STABLE AS
$$ SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') $$;

-- Retention of one table: recorded, and with TimescaleDB made a retention policy (chunks older than keep are
-- dropped by the background job). Without it, mdp_enforce_retention() applies the recorded intervals.
CREATE OR REPLACE FUNCTION mdp_set_retention(tbl TEXT, keep INTERVAL) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mdp_time_tables SET drop_after = keep WHERE table_name = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mdp_set_retention: % is not a time table (see mdp_time_tables)', tbl;
    END IF;
    IF mdp_timescale() THEN
        PERFORM remove_retention_policy(tbl::regclass, if_exists => TRUE);
        IF keep IS NOT NULL THEN
            PERFORM add_retention_policy(tbl::regclass, drop_after => keep);
        END IF;
    END IF;
END
$$;

-- Plain PostgreSQL has no background jobs: this deletes the rows older than each table's drop_after (run it from
-- cron or `mdp db retention --enforce`). With TimescaleDB the policies do it, and this deletes nothing.
CREATE OR REPLACE FUNCTION mdp_enforce_retention() RETURNS TABLE (table_name TEXT, deleted BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    t RECORD;
    n BIGINT;
BEGIN
    IF mdp_timescale() THEN
        RETURN;
    END IF;
    FOR t IN SELECT m.table_name, m.time_column, m.drop_after FROM mdp_time_tables m
             WHERE m.drop_after IS NOT NULL ORDER BY m.table_name LOOP
        EXECUTE format('DELETE FROM %I WHERE %I < now() - $1', t.table_name, t.time_column) USING t.drop_after;
        GET DIAGNOSTICS n = ROW_COUNT;
        table_name := t.table_name;
        deleted := n;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Makes a created table a time table. TimescaleDB: a hypertable chunked by `chunk` on `time_column`, compressed
-- (segments `segment_by`, newest first) by a policy once chunks are `compress_after` old, and the retention
-- policy. Plain: a BRIN index on `time_column` (tiny, and the loads append in time order, so block ranges stay
-- tight) for the window DELETEs and time-range reads; the tables are not range-partitioned, as each partition
-- would have to exist before a load and the tables stay a few GB on one machine.
CREATE OR REPLACE FUNCTION mdp_time_table(tbl TEXT, time_column TEXT, chunk INTERVAL, segment_by TEXT,
                                          compress_after INTERVAL, drop_after INTERVAL)
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mdp_time_tables VALUES (tbl, time_column, chunk, segment_by, compress_after, drop_after)
    ON CONFLICT (table_name) DO NOTHING;
    IF mdp_timescale() THEN
        PERFORM create_hypertable(tbl::regclass, by_range(time_column::name, chunk), if_not_exists => TRUE);
        IF segment_by IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
                           'timescaledb.compress_orderby = %L)', tbl, segment_by, time_column || ' DESC');
            PERFORM add_compression_policy(tbl::regclass, compress_after => compress_after, if_not_exists => TRUE);
        END IF;
        PERFORM mdp_set_retention(tbl, (SELECT m.drop_after FROM mdp_time_tables m WHERE m.table_name = tbl));
    ELSE
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING brin (%I)', tbl || '_' || time_column || '_brin',
                       tbl, time_column);
    END IF;
END
$$;

-- Normalized trades, materialized per exchange-time hour: window ts in [hour, hour + 1h). No primary key (as in
-- DuckDB): uniqueness is enforced upstream and checked by the asset checks; a unique index would slow every load.
CREATE TABLE IF NOT EXISTS trades (
    exchange  TEXT           NOT NULL,
    symbol    TEXT           NOT NULL,  -- BASE-QUOTE[-SUFFIX]
    ts        TIMESTAMPTZ    NOT NULL,  -- exchange trade time (microseconds: PostgreSQL's resolution)
    recv_ts   TIMESTAMPTZ    NOT NULL,
    trade_id  TEXT           NOT NULL,
    price     NUMERIC(38,12) NOT NULL,
    size      NUMERIC(38,12) NOT NULL,
    side      TEXT           NOT NULL CHECK (side IN ('buy', 'sell')),
    fills     BIGINT         NOT NULL CHECK (fills >= 1)
);
CREATE INDEX IF NOT EXISTS trades_symbol_ts ON trades (exchange, symbol, ts);

-- OHLCV candles (1m .. 1d), materialized per hour: window close_time in (hour, hour + 1h]. `complete`: the whole
-- span was observed; `coverage`: the observed share of it.
CREATE TABLE IF NOT EXISTS candles (
    exchange               TEXT             NOT NULL,
    symbol                 TEXT             NOT NULL,
    timeframe              TEXT             NOT NULL,
    open_time              TIMESTAMPTZ      NOT NULL,
    close_time             TIMESTAMPTZ      NOT NULL,
    open                   NUMERIC(38,12)   NOT NULL,
    high                   NUMERIC(38,12)   NOT NULL,
    low                    NUMERIC(38,12)   NOT NULL,
    close                  NUMERIC(38,12)   NOT NULL,
    volume                 NUMERIC(38,12)   NOT NULL,
    quote_volume           NUMERIC(38,18)   NOT NULL,
    trade_count            BIGINT           NOT NULL,
    taker_buy_volume       NUMERIC(38,12)   NOT NULL,
    taker_buy_quote_volume NUMERIC(38,18)   NOT NULL,
    vwap                   NUMERIC(38,12)   NOT NULL,
    complete               BOOLEAN          NOT NULL,
    coverage               DOUBLE PRECISION NOT NULL,
    -- a hypertable's unique keys must hold its time column: close_time is in it
    PRIMARY KEY (exchange, symbol, timeframe, close_time)
);

-- Covered and uncovered stretches per stream, materialized per hour: window start_time in [hour, hour + 1h).
CREATE TABLE IF NOT EXISTS coverage (
    exchange   TEXT             NOT NULL,
    symbol     TEXT             NOT NULL,
    channel    TEXT             NOT NULL,
    start_time TIMESTAMPTZ      NOT NULL,
    end_time   TIMESTAMPTZ      NOT NULL,
    status     TEXT             NOT NULL CHECK (status IN ('covered', 'gap')),
    reason     TEXT,
    detail     TEXT,
    missing    BIGINT,
    filled     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, symbol, channel, start_time)
);

-- Chunk intervals: a chunk (and its indexes) should fit comfortably in memory and an hourly window touch one.
-- trades: up to tens of millions of rows a day across exchanges: 1 day. candles: ~10k rows a day per symbol
-- over all timeframes: 7 days. coverage: a few rows an hour per stream: 30 days. Compression after 7 days, once
-- late re-runs of an hour are unlikely (TimescaleDB can still rewrite compressed chunks, only slower). Trades,
-- candles and coverage are kept forever: a retention policy drops by the data's time, not the load's, so loading
-- last year's history into a table kept 30 days would lose it at the next policy run.
SELECT mdp_time_table('trades', 'ts', INTERVAL '1 day', 'exchange, symbol', INTERVAL '7 days', NULL);
SELECT mdp_time_table('candles', 'close_time', INTERVAL '7 days', 'exchange, symbol', INTERVAL '30 days', NULL);
SELECT mdp_time_table('coverage', 'start_time', INTERVAL '30 days', NULL, NULL, NULL);

-- The DuckDB convenience views, the same in both paths.
CREATE OR REPLACE VIEW candles_1m AS SELECT * FROM candles WHERE timeframe = '1m';

CREATE OR REPLACE VIEW coverage_gaps AS
SELECT exchange, symbol, channel, start_time, end_time, end_time - start_time AS duration, reason, detail, missing,
       filled
FROM coverage
WHERE status = 'gap';
