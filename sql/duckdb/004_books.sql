-- Order books rebuilt from the raw layer (mdplatform.book), materialized per hour by the book assets
-- (delete-then-insert of the hour's window). Times are the exchange's clock (as trades and candles).
-- Book metrics are DOUBLE by design: they are arithmetic on the book's levels (mid, microprice, sums of sizes),
-- not amounts carried through; heatmap bucket edges are exact DECIMAL multiples of the bucket size.

-- The book sampled every step while it was valid: best levels, metrics, depth within 10/25/50/100 bp of the mid
-- (null beyond the range the book's snapshot covered, bid_floor..ask_ceiling), the top levels per side.
CREATE TABLE IF NOT EXISTS book_snapshots (
    ts               TIMESTAMPTZ NOT NULL,
    exchange         VARCHAR     NOT NULL,
    symbol           VARCHAR     NOT NULL,
    update_id        BIGINT,
    book_ts          TIMESTAMPTZ NOT NULL,  -- the time of the last frame the book reflects
    bid_price        DOUBLE      NOT NULL,
    bid_size         DOUBLE      NOT NULL,
    ask_price        DOUBLE      NOT NULL,
    ask_size         DOUBLE      NOT NULL,
    mid              DOUBLE      NOT NULL,
    spread           DOUBLE      NOT NULL,
    spread_bps       DOUBLE      NOT NULL,
    microprice       DOUBLE      NOT NULL,
    bid_floor        DOUBLE,
    ask_ceiling      DOUBLE,
    bid_depth_10bps  DOUBLE,
    ask_depth_10bps  DOUBLE,
    imbalance_10bps  DOUBLE,
    bid_depth_25bps  DOUBLE,
    ask_depth_25bps  DOUBLE,
    imbalance_25bps  DOUBLE,
    bid_depth_50bps  DOUBLE,
    ask_depth_50bps  DOUBLE,
    imbalance_50bps  DOUBLE,
    bid_depth_100bps DOUBLE,
    ask_depth_100bps DOUBLE,
    imbalance_100bps DOUBLE,
    bid_px           DOUBLE[]    NOT NULL,
    bid_sz           DOUBLE[]    NOT NULL,
    ask_px           DOUBLE[]    NOT NULL,
    ask_sz           DOUBLE[]    NOT NULL
);

-- Spans of the hour with no valid book, and why (no snapshot yet, gap, checksum, silent, coverage: ...).
CREATE TABLE IF NOT EXISTS book_invalid (
    exchange VARCHAR     NOT NULL,
    symbol   VARCHAR     NOT NULL,
    "start"  TIMESTAMPTZ NOT NULL,
    "end"    TIMESTAMPTZ NOT NULL,
    reason   VARCHAR     NOT NULL
);

-- Resting size per price bucket and side, per step ('1s' and the '1m' roll-up), per book and consolidated
-- across exchanges (exchange '*', symbol BASE-USD*: spot books quoted in USD, USDT, USDC... taken at par).
CREATE TABLE IF NOT EXISTS book_heatmap (
    ts             TIMESTAMPTZ    NOT NULL,
    step           VARCHAR        NOT NULL,
    exchange       VARCHAR        NOT NULL,
    symbol         VARCHAR        NOT NULL,
    side           VARCHAR        NOT NULL,
    price          DECIMAL(38,12) NOT NULL,  -- the bucket's lower edge
    bucket         DECIMAL(38,12) NOT NULL,
    size           DOUBLE         NOT NULL,
    intensity      DOUBLE         NOT NULL,
    exchange_count INTEGER        NOT NULL,
    samples        INTEGER        NOT NULL,
    complete       BOOLEAN        NOT NULL
);

-- Traded volume per price bucket per minute by taker side (exact decimals).
CREATE TABLE IF NOT EXISTS trade_heatmap (
    minute       TIMESTAMPTZ    NOT NULL,
    exchange     VARCHAR        NOT NULL,
    symbol       VARCHAR        NOT NULL,
    price_bucket DECIMAL(38,12) NOT NULL,
    bucket_size  DECIMAL(38,12) NOT NULL,
    buy_size     DECIMAL(38,12) NOT NULL,
    sell_size    DECIMAL(38,12) NOT NULL,
    buy_count    BIGINT         NOT NULL,
    sell_count   BIGINT         NOT NULL,
    intensity    DOUBLE         NOT NULL
);

-- Per base asset and step: best bid/ask across exchanges, summed depth bands, the books that contributed and how
-- stale each was (ms).
CREATE TABLE IF NOT EXISTS consolidated_book (
    ts                TIMESTAMPTZ NOT NULL,
    base              VARCHAR     NOT NULL,
    best_bid          DOUBLE      NOT NULL,
    best_bid_exchange VARCHAR     NOT NULL,
    best_ask          DOUBLE      NOT NULL,
    best_ask_exchange VARCHAR     NOT NULL,
    mid               DOUBLE      NOT NULL,
    crossed           BOOLEAN     NOT NULL,
    bid_depth_10bps   DOUBLE,
    ask_depth_10bps   DOUBLE,
    imbalance_10bps   DOUBLE,
    bid_depth_25bps   DOUBLE,
    ask_depth_25bps   DOUBLE,
    imbalance_25bps   DOUBLE,
    bid_depth_50bps   DOUBLE,
    ask_depth_50bps   DOUBLE,
    imbalance_50bps   DOUBLE,
    bid_depth_100bps  DOUBLE,
    ask_depth_100bps  DOUBLE,
    imbalance_100bps  DOUBLE,
    exchange_count    INTEGER     NOT NULL,
    exchanges         VARCHAR[]   NOT NULL,
    symbols           VARCHAR[]   NOT NULL,
    staleness_ms      DOUBLE[]    NOT NULL
);
