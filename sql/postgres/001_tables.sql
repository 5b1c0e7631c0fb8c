-- PostgreSQL / TimescaleDB variant of sql/duckdb (same tables and columns). Not used by the code yet: the
-- warehouse writer targets DuckDB; this is the schema a Postgres sink would load into (same delete-then-insert
-- of an hour window per partition). With TimescaleDB installed, both tables become hypertables.
CREATE TABLE IF NOT EXISTS trades (
    exchange  TEXT             NOT NULL,
    symbol    TEXT             NOT NULL,
    ts        TIMESTAMPTZ      NOT NULL,
    recv_ts   TIMESTAMPTZ      NOT NULL,
    trade_id  TEXT             NOT NULL,
    price     DOUBLE PRECISION NOT NULL,
    size      DOUBLE PRECISION NOT NULL,
    side      TEXT             NOT NULL CHECK (side IN ('buy', 'sell'))
);
CREATE INDEX IF NOT EXISTS trades_symbol_ts ON trades (exchange, symbol, ts);

CREATE TABLE IF NOT EXISTS candles (
    exchange               TEXT             NOT NULL,
    symbol                 TEXT             NOT NULL,
    timeframe              TEXT             NOT NULL,
    open_time              TIMESTAMPTZ      NOT NULL,
    close_time             TIMESTAMPTZ      NOT NULL,
    open                   DOUBLE PRECISION NOT NULL,
    high                   DOUBLE PRECISION NOT NULL,
    low                    DOUBLE PRECISION NOT NULL,
    close                  DOUBLE PRECISION NOT NULL,
    volume                 DOUBLE PRECISION NOT NULL,
    quote_volume           DOUBLE PRECISION NOT NULL,
    trade_count            BIGINT           NOT NULL,
    taker_buy_volume       DOUBLE PRECISION NOT NULL,
    taker_buy_quote_volume DOUBLE PRECISION NOT NULL,
    vwap                   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, open_time, close_time)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('trades', 'ts', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE);
        PERFORM create_hypertable('candles', 'close_time', chunk_time_interval => INTERVAL '7 days',
                                  if_not_exists => TRUE);
    END IF;
END
$$;
