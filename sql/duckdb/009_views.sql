-- Convenience views over the tables. The views over the lake's minute trees (`raw`, `raw_between(lo, hi)`,
-- `events`, ...) are made by mdplatform.warehouse.Warehouse.create_lake_views, since they need the lake's location.
CREATE OR REPLACE VIEW candles_1m AS
SELECT * FROM candles WHERE timeframe = '1m';

CREATE OR REPLACE VIEW trade_counts AS
SELECT exchange, symbol, count(*) AS trades, sum(fills) AS fills, min(ts) AS first_ts, max(ts) AS last_ts
FROM trades
GROUP BY exchange, symbol;

-- every stretch a stream was not observed, longest first
CREATE OR REPLACE VIEW coverage_gaps AS
SELECT exchange, symbol, channel, start_time, end_time, end_time - start_time AS duration, reason, detail, missing,
       filled
FROM coverage
WHERE status = 'gap'
ORDER BY duration DESC;
