-- What was observed: per stream (exchange, symbol, channel), consecutive stretches of exchange time that were
-- covered or not, materialized per hour by the `coverage` asset (delete-then-insert of start_time in
-- [hour, hour + 1h)). Gaps say why (not connected, lost on crash, silent, id gap, sequence gap, checksum
-- mismatch, subscription refused), how many trade ids are missing when ids tell, and `filled`: the share of the
-- gap another trade stream of the same symbol observed.
CREATE TABLE IF NOT EXISTS coverage (
    exchange   VARCHAR     NOT NULL,
    symbol     VARCHAR     NOT NULL,
    channel    VARCHAR     NOT NULL,
    start_time TIMESTAMPTZ NOT NULL,
    end_time   TIMESTAMPTZ NOT NULL,
    status     VARCHAR     NOT NULL,  -- covered | gap
    reason     VARCHAR,
    detail     VARCHAR,
    missing    BIGINT,
    filled     DOUBLE      NOT NULL
);
