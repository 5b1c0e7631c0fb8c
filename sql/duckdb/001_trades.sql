-- Normalized trades, one row per (exchange, symbol, trade_id); materialized per exchange-time hour by the
-- Dagster `trades` asset (delete-then-insert of ts in [hour, hour + 1h)). Times are UTC instants; DuckDB keeps
-- TIMESTAMPTZ in microseconds (the lake Parquet keeps nanoseconds).
-- No PRIMARY KEY: uniqueness is enforced upstream (dedup) and verified by the asset checks; an ART index
-- would make every hourly insert slower and hold the whole key set in memory.
CREATE TABLE IF NOT EXISTS trades (
    exchange  VARCHAR     NOT NULL,
    symbol    VARCHAR     NOT NULL,  -- BASE-QUOTE[-SUFFIX]
    ts        TIMESTAMPTZ NOT NULL,  -- exchange trade time
    recv_ts   TIMESTAMPTZ NOT NULL,  -- our receive time
    trade_id  VARCHAR     NOT NULL,
    price     DOUBLE      NOT NULL,
    size      DOUBLE      NOT NULL,
    side      VARCHAR     NOT NULL   -- taker side: buy | sell
);
