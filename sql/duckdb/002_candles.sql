-- OHLCV candles (Binance kline semantics: open_time <= trade ts < close_time, epoch-aligned), timeframes
-- 1m 5m 15m 1h 4h 1d. Materialized per hour by the `candles` asset: the candles whose close_time is in
-- (hour, hour + 1h] (delete-then-insert of that window).
-- `complete`: the whole span was observed (1m: the symbol's trade streams were covered for the whole minute;
-- longer: every minute has a complete 1m candle); `coverage`: the observed share of the span. A flat candle
-- (no trades, previous close) exists only where the minute was observed and the price carried into it is known.
-- Exact numbers: prices and base volumes DECIMAL(38, 12); quote volumes DECIMAL(38, 18) (exact when price and
-- size together have at most 18 decimal places); vwap rounded half up to 12 places; trade_count counts fills.
CREATE TABLE IF NOT EXISTS candles (
    exchange               VARCHAR        NOT NULL,
    symbol                 VARCHAR        NOT NULL,
    timeframe              VARCHAR        NOT NULL,
    open_time              TIMESTAMPTZ    NOT NULL,
    close_time             TIMESTAMPTZ    NOT NULL,
    open                   DECIMAL(38,12) NOT NULL,
    high                   DECIMAL(38,12) NOT NULL,
    low                    DECIMAL(38,12) NOT NULL,
    close                  DECIMAL(38,12) NOT NULL,
    volume                 DECIMAL(38,12) NOT NULL,
    quote_volume           DECIMAL(38,18) NOT NULL,
    trade_count            BIGINT         NOT NULL,
    taker_buy_volume       DECIMAL(38,12) NOT NULL,
    taker_buy_quote_volume DECIMAL(38,18) NOT NULL,
    vwap                   DECIMAL(38,12) NOT NULL,
    complete               BOOLEAN        NOT NULL,
    coverage               DOUBLE         NOT NULL
);
