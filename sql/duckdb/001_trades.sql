-- Normalized trades, one row per (exchange, symbol, trade_id); materialized per exchange-time hour by the
-- Dagster `trades` asset (delete-then-insert of ts in [hour, hour + 1h)). Times are UTC instants; DuckDB keeps
-- TIMESTAMPTZ in microseconds (the lake Parquet keeps nanoseconds).
-- Prices and sizes are exact: DECIMAL(38, 12) holds every exchange string with up to 12 decimal places (values
-- with more are quarantined, never rounded); price * size is DECIMAL(38, 24) in DuckDB, exact.
-- No PRIMARY KEY: uniqueness is enforced upstream (dedup) and verified by the asset checks; an ART index
-- would make every hourly insert slower and hold the whole key set in memory.
CREATE TABLE IF NOT EXISTS trades (
    exchange  VARCHAR        NOT NULL,
    symbol    VARCHAR        NOT NULL,  -- BASE-QUOTE[-SUFFIX]
    ts        TIMESTAMPTZ    NOT NULL,  -- exchange trade time
    recv_ts   TIMESTAMPTZ    NOT NULL,  -- our receive time
    trade_id  VARCHAR        NOT NULL,  -- an aggregated row names the fill ids it holds: "first-last"
    price     DECIMAL(38,12) NOT NULL,
    size      DECIMAL(38,12) NOT NULL,
    side      VARCHAR        NOT NULL,  -- taker side: buy | sell
    fills     BIGINT         NOT NULL   -- matches the row aggregates (Binance aggTrade, OKX count); 1 otherwise
);
