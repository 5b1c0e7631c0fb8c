-- PostgreSQL / TimescaleDB variant of sql/duckdb (same tables and columns). Not used by the code yet: the
-- warehouse writer targets DuckDB; this is the schema a Postgres sink would load into (same delete-then-insert
-- of an hour window per partition). With TimescaleDB installed, the tables become hypertables.
-- Exact numbers: NUMERIC(38, 12) for prices and sizes, NUMERIC(38, 18) for quote amounts, as in DuckDB.
CREATE TABLE IF NOT EXISTS trades (
    exchange  TEXT           NOT NULL,
    symbol    TEXT           NOT NULL,
    ts        TIMESTAMPTZ    NOT NULL,
    recv_ts   TIMESTAMPTZ    NOT NULL,
    trade_id  TEXT           NOT NULL,
    price     NUMERIC(38,12) NOT NULL,
    size      NUMERIC(38,12) NOT NULL,
    side      TEXT           NOT NULL CHECK (side IN ('buy', 'sell')),
    fills     BIGINT         NOT NULL CHECK (fills >= 1)
);
CREATE INDEX IF NOT EXISTS trades_symbol_ts ON trades (exchange, symbol, ts);

CREATE TABLE IF NOT EXISTS candles (
    exchange               TEXT           NOT NULL,
    symbol                 TEXT           NOT NULL,
    timeframe              TEXT           NOT NULL,
    open_time              TIMESTAMPTZ    NOT NULL,
    close_time             TIMESTAMPTZ    NOT NULL,
    open                   NUMERIC(38,12) NOT NULL,
    high                   NUMERIC(38,12) NOT NULL,
    low                    NUMERIC(38,12) NOT NULL,
    close                  NUMERIC(38,12) NOT NULL,
    volume                 NUMERIC(38,12) NOT NULL,
    quote_volume           NUMERIC(38,18) NOT NULL,
    trade_count            BIGINT         NOT NULL,
    taker_buy_volume       NUMERIC(38,12) NOT NULL,
    taker_buy_quote_volume NUMERIC(38,18) NOT NULL,
    vwap                   NUMERIC(38,12) NOT NULL,
    complete               BOOLEAN        NOT NULL,
    coverage               DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, open_time, close_time)
);

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

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('trades', 'ts', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE);
        PERFORM create_hypertable('candles', 'close_time', chunk_time_interval => INTERVAL '7 days',
                                  if_not_exists => TRUE);
        PERFORM create_hypertable('coverage', 'start_time', chunk_time_interval => INTERVAL '30 days',
                                  if_not_exists => TRUE);
    END IF;
END
$$;
