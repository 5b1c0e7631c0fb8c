-- Liquidity and trade heatmaps (issue 8). Price buckets are exact NUMERIC(38,12) (a bucket edge is a price: a float
-- would put 0.1-wide edges off by ulps and split equal prices into two buckets); book sizes and intensities are
-- double precision like the book metrics; traded volume is exact, as trades are.
-- TimescaleDB path checked against its documentation only (see 001_core.sql).

-- One row per (ts, step, exchange, symbol, side, price bucket). step: '1s' | '1m'; exchange '*' is the
-- consolidated heatmap of a base across exchanges (exchange_count says over how many).
CREATE TABLE IF NOT EXISTS book_heatmap (
    ts             TIMESTAMPTZ      NOT NULL,
    step           TEXT             NOT NULL CHECK (step IN ('1s', '1m')),
    exchange       TEXT             NOT NULL,  -- '*' for the consolidated heatmap
    symbol         TEXT             NOT NULL,  -- BASE-USD* for the consolidated heatmap
    side           TEXT             NOT NULL CHECK (side IN ('bid', 'ask')),
    price          NUMERIC(38,12)   NOT NULL,  -- the bucket's low edge
    bucket         NUMERIC(38,12)   NOT NULL,  -- the bucket's width
    size           DOUBLE PRECISION,
    intensity      DOUBLE PRECISION,
    exchange_count INT              NOT NULL,
    samples        INT              NOT NULL,  -- book samples a roll-up averages (1 for a 1 s row)
    complete       BOOLEAN          NOT NULL   -- every step of the roll-up sampled
);
CREATE INDEX IF NOT EXISTS book_heatmap_symbol_ts ON book_heatmap (exchange, symbol, step, ts);

-- Traded volume per minute and price bucket.
CREATE TABLE IF NOT EXISTS trade_heatmap (
    minute       TIMESTAMPTZ      NOT NULL,
    exchange     TEXT             NOT NULL,
    symbol       TEXT             NOT NULL,
    price_bucket NUMERIC(38,12)   NOT NULL,  -- the bucket's low edge
    bucket_size  NUMERIC(38,12)   NOT NULL,
    buy_size     NUMERIC(38,12)   NOT NULL,
    sell_size    NUMERIC(38,12)   NOT NULL,
    buy_count    BIGINT           NOT NULL,
    sell_count   BIGINT           NOT NULL,
    intensity    DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS trade_heatmap_symbol_minute ON trade_heatmap (exchange, symbol, minute);

-- Chunks: the 1s book heatmap has tens of buckets per side per second per symbol, millions of rows a day: 1 day.
-- The trade heatmap has a few hundred rows per minute at most: 7 days, kept forever like the trades.
SELECT mdp_time_table('book_heatmap', 'ts', INTERVAL '1 day', 'exchange, symbol', INTERVAL '2 days',
                      INTERVAL '30 days');
SELECT mdp_time_table('trade_heatmap', 'minute', INTERVAL '7 days', 'exchange, symbol', INTERVAL '7 days', NULL);
