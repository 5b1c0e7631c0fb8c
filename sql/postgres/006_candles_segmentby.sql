-- Candles compress segmented by timeframe too (issue 17): their primary key (exchange, symbol, timeframe,
-- close_time) has timeframe, which 001 left out of the segments, and TimescaleDB warned that it should be a
-- segment-by column (a unique key's columns must be segment-by or order-by columns for its checks on compressed
-- chunks). A candle series is one (exchange, symbol, timeframe): a segment holds one series in time order.
UPDATE mdp_time_tables SET segment_by = 'exchange, symbol, timeframe' WHERE table_name = 'candles';

-- Since TimescaleDB 2.14 compression settings are per chunk: changing them applies to chunks compressed from now
-- on and already compressed chunks keep theirs (the documented behaviour of ALTER TABLE on a hypertable with
-- compressed chunks). Before 2.14 the change is refused while a chunk is compressed: those are decompressed
-- first, and the compression policy compresses them again with the new segments.
DO $$
BEGIN
    IF mdp_timescale() THEN
        IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables h
                   WHERE h.hypertable_schema = current_schema() AND h.hypertable_name = 'candles') THEN
            IF (SELECT string_to_array(split_part(extversion, '-', 1), '.')::INT[] FROM pg_extension
                WHERE extname = 'timescaledb') < ARRAY[2, 14] THEN
                PERFORM decompress_chunk(c, if_compressed => TRUE) FROM show_chunks('candles') c;
            END IF;
            ALTER TABLE candles SET (timescaledb.compress, timescaledb.compress_segmentby = 'exchange, symbol, timeframe',
                                     timescaledb.compress_orderby = 'close_time DESC');
        END IF;
    END IF;
END
$$;
