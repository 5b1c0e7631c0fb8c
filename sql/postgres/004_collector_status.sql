-- What each collector stream was doing (connected, subscribed, silent...) and how many messages it had landed:
-- the dashboards' health panel. A few rows a minute per stream: 7-day chunks, kept 30 days.
-- TimescaleDB path checked against its documentation only (see 001_core.sql).
CREATE TABLE IF NOT EXISTS collector_status (
    ts       TIMESTAMPTZ NOT NULL,
    exchange TEXT        NOT NULL,
    symbol   TEXT,
    channel  TEXT,
    state    TEXT        NOT NULL,
    messages BIGINT,
    detail   TEXT
);
CREATE INDEX IF NOT EXISTS collector_status_exchange_ts ON collector_status (exchange, ts);

SELECT mdp_time_table('collector_status', 'ts', INTERVAL '7 days', 'exchange, symbol', INTERVAL '7 days',
                      INTERVAL '30 days');
