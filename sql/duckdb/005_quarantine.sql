-- What was quarantined, per hour: raw rows known to be unusable, why, and where they came from; materialized per
-- hour by the Dagster `quarantine` asset (lake quarantine_rows/). Counts per reason:
-- SELECT reason, count(*) FROM quarantine_rows GROUP BY ALL.

-- Raw rows known to be unusable: trade frames the normalization rejected (stage normalize, with the frame) and
-- frames the collector could not read (stage collector: its frame_error events; the frame stays in raw/).
CREATE TABLE IF NOT EXISTS quarantine_rows (
    hour_start TIMESTAMPTZ NOT NULL,  -- the partition: the trades hour (normalize) or the receive hour (collector)
    stage      VARCHAR     NOT NULL,  -- normalize | collector
    reason     VARCHAR     NOT NULL,  -- why the row could not be used
    recv_ts    TIMESTAMPTZ NOT NULL,  -- when the frame was received
    exchange   VARCHAR     NOT NULL,
    channel    VARCHAR     NOT NULL,  -- the exchange's own channel of the frame
    symbol     VARCHAR     NOT NULL,  -- the exchange's own instrument id, empty when none
    conn_id    VARCHAR     NOT NULL,  -- the connection (capture:<file> for an imported recording)
    seq        BIGINT      NOT NULL,  -- the frame's number on its connection
    source     VARCHAR     NOT NULL,  -- raw/exchange=/date=/hour=: the raw folder holding the frame
    payload    VARCHAR                -- the frame as received (normalize); null for the collector's
);
