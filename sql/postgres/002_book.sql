-- Order book tables (issue 8): per-exchange snapshots with their metrics, the stretches where a book could not be
-- trusted, and the cross-exchange consolidated book. Metrics are double precision by design (derived ratios and
-- averages, see mdplatform/book/_metrics.py); the level arrays hold each side's price levels and sizes.
-- TimescaleDB path checked against its documentation only (see 001_core.sql).

CREATE TABLE IF NOT EXISTS book_snapshots (
    ts               TIMESTAMPTZ        NOT NULL,
    exchange         TEXT               NOT NULL,
    symbol           TEXT               NOT NULL,
    update_id        BIGINT,
    book_ts          TIMESTAMPTZ,  -- the time of the last frame the book reflects
    bid_price        DOUBLE PRECISION,
    bid_size         DOUBLE PRECISION,
    ask_price        DOUBLE PRECISION,
    ask_size         DOUBLE PRECISION,
    mid              DOUBLE PRECISION,
    spread           DOUBLE PRECISION,
    spread_bps       DOUBLE PRECISION,
    microprice       DOUBLE PRECISION,
    bid_floor        DOUBLE PRECISION,  -- the range the book's snapshot covered (bands beyond it are null)
    ask_ceiling      DOUBLE PRECISION,
    bid_depth_10bps  DOUBLE PRECISION,
    bid_depth_25bps  DOUBLE PRECISION,
    bid_depth_50bps  DOUBLE PRECISION,
    bid_depth_100bps DOUBLE PRECISION,
    ask_depth_10bps  DOUBLE PRECISION,
    ask_depth_25bps  DOUBLE PRECISION,
    ask_depth_50bps  DOUBLE PRECISION,
    ask_depth_100bps DOUBLE PRECISION,
    imbalance_10bps  DOUBLE PRECISION,
    imbalance_25bps  DOUBLE PRECISION,
    imbalance_50bps  DOUBLE PRECISION,
    imbalance_100bps DOUBLE PRECISION,
    bid_px           DOUBLE PRECISION[],
    bid_sz           DOUBLE PRECISION[],
    ask_px           DOUBLE PRECISION[],
    ask_sz           DOUBLE PRECISION[]
);
CREATE INDEX IF NOT EXISTS book_snapshots_symbol_ts ON book_snapshots (exchange, symbol, ts);

-- Stretches [start, end) in which a book was not valid (gap in updates, checksum mismatch...): few rows.
CREATE TABLE IF NOT EXISTS book_invalid (
    exchange TEXT        NOT NULL,
    symbol   TEXT        NOT NULL,
    start    TIMESTAMPTZ NOT NULL,
    "end"    TIMESTAMPTZ NOT NULL,
    reason   TEXT
);

-- The best bid and ask across exchanges per base asset, and each exchange's staleness at that instant.
CREATE TABLE IF NOT EXISTS consolidated_book (
    ts                TIMESTAMPTZ        NOT NULL,
    base              TEXT               NOT NULL,
    best_bid          DOUBLE PRECISION,
    best_bid_exchange TEXT,
    best_ask          DOUBLE PRECISION,
    best_ask_exchange TEXT,
    mid               DOUBLE PRECISION,
    crossed           BOOLEAN,
    bid_depth_10bps   DOUBLE PRECISION,
    bid_depth_25bps   DOUBLE PRECISION,
    bid_depth_50bps   DOUBLE PRECISION,
    bid_depth_100bps  DOUBLE PRECISION,
    ask_depth_10bps   DOUBLE PRECISION,
    ask_depth_25bps   DOUBLE PRECISION,
    ask_depth_50bps   DOUBLE PRECISION,
    ask_depth_100bps  DOUBLE PRECISION,
    imbalance_10bps   DOUBLE PRECISION,
    imbalance_25bps   DOUBLE PRECISION,
    imbalance_50bps   DOUBLE PRECISION,
    imbalance_100bps  DOUBLE PRECISION,
    exchange_count    INT,
    exchanges         TEXT[],
    symbols           TEXT[],
    staleness_ms      DOUBLE PRECISION[]
);
CREATE INDEX IF NOT EXISTS consolidated_book_base_ts ON consolidated_book (base, ts);

-- Chunks: a snapshot a second per symbol with four level arrays is a few kB a row, GBs a day over tens of symbols:
-- 6 hours. book_invalid: a handful of rows a day: 30 days. consolidated_book: one row a second per base, no
-- arrays of levels: 1 day. Snapshots are kept 30 days (the lake keeps everything; the database serves dashboards).
SELECT mdp_time_table('book_snapshots', 'ts', INTERVAL '6 hours', 'exchange, symbol', INTERVAL '2 days',
                      INTERVAL '30 days');
SELECT mdp_time_table('book_invalid', 'start', INTERVAL '30 days', NULL, NULL, NULL);
SELECT mdp_time_table('consolidated_book', 'ts', INTERVAL '1 day', 'base', INTERVAL '2 days', INTERVAL '30 days');

-- Dashboards plot spread, depth and imbalance over hours to days: per-minute figures instead of 60 snapshots a
-- minute per symbol. With TimescaleDB a continuous aggregate kept fresh by a policy (the last 3 hours, so the
-- hourly re-loads are folded in; an older backfill needs CALL refresh_continuous_aggregate('book_metrics_1m', ...));
-- without it a view of the same name and columns, computed when read.
DO $$
BEGIN
    IF mdp_timescale() THEN
        EXECUTE $cagg$
            CREATE MATERIALIZED VIEW IF NOT EXISTS book_metrics_1m WITH (timescaledb.continuous) AS
            SELECT time_bucket(INTERVAL '1 minute', ts) AS minute, exchange, symbol, count(*) AS snapshots,
                   avg(mid) AS mid, avg(spread_bps) AS spread_bps, max(spread_bps) AS spread_bps_max,
                   avg(bid_depth_10bps) AS bid_depth_10bps, avg(ask_depth_10bps) AS ask_depth_10bps,
                   avg(imbalance_10bps) AS imbalance_10bps
            FROM book_snapshots
            GROUP BY 1, 2, 3
            WITH NO DATA
        $cagg$;
        PERFORM add_continuous_aggregate_policy('book_metrics_1m', start_offset => INTERVAL '3 hours',
                                                end_offset => INTERVAL '1 minute',
                                                schedule_interval => INTERVAL '5 minutes', if_not_exists => TRUE);
    ELSE
        CREATE OR REPLACE VIEW book_metrics_1m AS
        SELECT date_trunc('minute', ts) AS minute, exchange, symbol, count(*) AS snapshots,
               avg(mid) AS mid, avg(spread_bps) AS spread_bps, max(spread_bps) AS spread_bps_max,
               avg(bid_depth_10bps) AS bid_depth_10bps, avg(ask_depth_10bps) AS ask_depth_10bps,
               avg(imbalance_10bps) AS imbalance_10bps
        FROM book_snapshots
        GROUP BY 1, 2, 3;
    END IF;
END
$$;
