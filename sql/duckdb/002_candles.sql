-- OHLCV candles (Binance kline semantics: open_time <= trade ts < close_time, epoch-aligned), timeframes
-- 1m 5m 15m 1h 4h 1d. Materialized per hour by the `candles` asset: the candles whose close_time is in
-- (hour, hour + 1h] (delete-then-insert of that window). Flat minutes carry the previous close and zero volume.
CREATE TABLE IF NOT EXISTS candles (
    exchange               VARCHAR     NOT NULL,
    symbol                 VARCHAR     NOT NULL,
    timeframe              VARCHAR     NOT NULL,
    open_time              TIMESTAMPTZ NOT NULL,
    close_time             TIMESTAMPTZ NOT NULL,
    open                   DOUBLE      NOT NULL,
    high                   DOUBLE      NOT NULL,
    low                    DOUBLE      NOT NULL,
    close                  DOUBLE      NOT NULL,
    volume                 DOUBLE      NOT NULL,
    quote_volume           DOUBLE      NOT NULL,
    trade_count            BIGINT      NOT NULL,
    taker_buy_volume       DOUBLE      NOT NULL,
    taker_buy_quote_volume DOUBLE      NOT NULL,
    vwap                   DOUBLE      NOT NULL
);
