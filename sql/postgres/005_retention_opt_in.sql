-- Retention is opt-in (issue 17). 002-004 gave the book tables and collector_status a 30-day retention, which
-- TimescaleDB made retention policies: a policy drops by the data's time, not the load's, so a user loading last
-- year's recordings lost their books at its first run. Now no migration deletes anything: a retention is set by
-- `mdp db retention TABLE KEEP` (mdp_set_retention), only recorded in mdp_time_tables, and applied by
-- `mdp db retention --enforce` (mdplatform/pg/_retention.py), which says what it deletes; without --enforce it
-- only reports what it would delete. Both servers the same way: DELETE on plain tables, drop_chunks on hypertables.

-- The defaults 002-004 set (a value a user set with mdp_set_retention is kept, and now applied on --enforce).
UPDATE mdp_time_tables SET drop_after = NULL
WHERE table_name IN ('book_snapshots', 'consolidated_book', 'book_heatmap', 'collector_status')
  AND drop_after = INTERVAL '30 days';

-- Records a table's retention; no background policy (mdp_time_table() calls this for tables made later).
CREATE OR REPLACE FUNCTION mdp_set_retention(tbl TEXT, keep INTERVAL) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mdp_time_tables SET drop_after = keep WHERE table_name = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mdp_set_retention: % is not a time table (see mdp_time_tables)', tbl;
    END IF;
END
$$;

-- The retention policies made by 002-004 (or by mdp_set_retention since): removed. Only a hypertable can have
-- one; a time table created before the extension was installed is a plain table.
DO $$
DECLARE
    t TEXT;
BEGIN
    IF mdp_timescale() THEN
        FOR t IN SELECT m.table_name FROM mdp_time_tables m ORDER BY 1 LOOP
            IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables h
                       WHERE h.hypertable_schema = current_schema() AND h.hypertable_name = t) THEN
                PERFORM remove_retention_policy(t::regclass, if_exists => TRUE);
            END IF;
        END LOOP;
    END IF;
END
$$;

-- Replaced by `mdp db retention --enforce`, which reports before it deletes and covers hypertables too.
DROP FUNCTION IF EXISTS mdp_enforce_retention();
