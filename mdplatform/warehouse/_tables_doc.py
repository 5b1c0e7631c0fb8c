"""docs/tables.md: every relation a warehouse reader sees, with its columns' DuckDB types and meanings.

The relations and types are DuckDB's own, from the catalog's statements made over an empty lake (the DDL's tables
and views, the lake's raw trees); each table's description is the comment above its ``CREATE`` in the DDL, each
column's meaning the comment on its DDL line, else the line here (``_MEANINGS``). A column with neither is an
error, so a column added to the DDL needs a meaning before the doc can be made again:

    python -m mdplatform.warehouse._tables_doc > docs/tables.md

(tests/warehouse/test_tables_doc.py fails when the file is not what this prints, or misses a column a published
warehouse has.)
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from ._catalog import described_columns, split_ddl
from ._lakeviews import MINUTE_TREES, lake_view_sql
from ._served import SERVED

__all__ = ["relation_columns", "tables_markdown"]

_CREATE = re.compile(
    r"^CREATE\s+(?:TABLE\s+IF\s+NOT\s+EXISTS|OR\s+REPLACE\s+VIEW)\s+\"?(\w+)\"?", re.IGNORECASE | re.MULTILINE
)
_COLUMN_COMMENT = re.compile(r'^\s*"?(\w+)"?\s+[A-Z][^-]*--\s*(.+?)\s*$')
_END = re.compile(r";[ \t]*$", re.MULTILINE)
_BAND = re.compile(r"^(bid|ask)_depth_(\d+)bps$|^imbalance_(\d+)bps$")

#: relations without a comment of their own in the DDL (the views, the lake's trees)
_SUMMARIES = {
    "coverage_gaps": "The gaps of `coverage` (`status = 'gap'`): every stretch a stream was not observed, longest "
    "first, with its duration.",
    "candles_1m": "The 1m candles: `candles` where `timeframe = '1m'`.",
    "trade_counts": "Trades per exchange and symbol over the whole warehouse (reads every trades file: add a time "
    "filter to `trades` for a range).",
    "raw": "Every frame as received, one row each (the lake's `raw/` tree: minute files, and the hour and day "
    "files of compaction and imports). `raw_between(lo, hi)` returns the same columns for receive times in "
    "[lo, hi), listing only those hours' folders.",
    "events": "The collector's bookkeeping beside the frames (lake `events/`): connections, subscriptions, and "
    "when a stream was proved to flow. `events_between(lo, hi)` likewise.",
    "backfill": "Frames `mdp backfill` fetched over REST for gaps (lake `backfill/`, partitioned by exchange "
    "time). `backfill_between(lo, hi)` likewise.",
    "backfill_events": "The backfill's bookkeeping (lake `backfill_events/`). `backfill_events_between(lo, hi)` "
    "likewise.",
}

#: views whose columns mean what their table's do
_SAME_AS = {"candles_1m": "candles", "coverage_gaps": "coverage", "backfill": "raw", "backfill_events": "events"}

_COMMON = {
    "exchange": "exchange id (`binance`, `okx`, ...)",
    "symbol": "instrument, normalized: BASE-QUOTE[-SUFFIX] (`BTC-USDT`, `ETH-USDT-PERP`)",
    "date": "partition day (UTC) of the file the row is in",
    "hour": "partition hour (UTC); for an hour or day file, the hour of the row's `recv_ts`",
    "minute": "partition minute; for an hour or day file, the minute of the row's `recv_ts`",
}

#: (relation, column) -> meaning, where the DDL line has no comment
_MEANINGS: dict[tuple[str, str], str] = {
    ("trades", "price"): "trade price, exact",
    ("trades", "size"): "traded size in base units, exact",
    ("candles", "timeframe"): "`1m`, `5m`, `15m`, `1h`, `4h` or `1d`",
    ("candles", "open_time"): "start of the candle (epoch-aligned); trades with open_time <= ts < close_time",
    ("candles", "close_time"): "end of the candle (exclusive); the candle is in the hour partition this falls in",
    ("candles", "open"): "first trade's price (a flat candle: the previous close)",
    ("candles", "high"): "highest trade price",
    ("candles", "low"): "lowest trade price",
    ("candles", "close"): "last trade's price",
    ("candles", "volume"): "base volume: sum of sizes",
    ("candles", "quote_volume"): "quote volume: sum of price x size",
    ("candles", "trade_count"): "fills (an aggregated trade counts its matches)",
    ("candles", "taker_buy_volume"): "base volume of taker buys",
    ("candles", "taker_buy_quote_volume"): "quote volume of taker buys",
    ("candles", "vwap"): "volume-weighted average price, rounded half up to 12 places",
    ("candles", "complete"): "the whole span was observed (1m: every trade stream of the symbol covered the "
    "minute; longer: every minute has a complete 1m candle)",
    ("candles", "coverage"): "observed share of the span, 0..1",
    ("coverage", "channel"): "stream: `trade`, `depth`, `bookTicker`, ... as the exchange names it",
    ("coverage", "start_time"): "start of the stretch (exchange time)",
    ("coverage", "end_time"): "end of the stretch (exclusive)",
    ("coverage", "reason"): "why a gap: not connected, lost on crash, silent, id gap, sequence gap, checksum "
    "mismatch, subscription refused (null when covered)",
    ("coverage", "detail"): "what was seen, in words (ids, times)",
    ("coverage", "missing"): "trade ids missing in the gap, when ids tell (else null)",
    ("coverage", "filled"): "share of the gap another trade stream of the same symbol observed, 0..1",
    ("coverage_gaps", "duration"): "end_time - start_time (the view is ordered longest first)",
    ("book_snapshots", "ts"): "sample time: a step of the grid (1 s by default), exchange clock",
    ("book_snapshots", "update_id"): "the exchange's book update id the sample reflects (null if it has none)",
    ("book_snapshots", "bid_price"): "best bid price",
    ("book_snapshots", "bid_size"): "size at the best bid",
    ("book_snapshots", "ask_price"): "best ask price",
    ("book_snapshots", "ask_size"): "size at the best ask",
    ("book_snapshots", "mid"): "(bid_price + ask_price) / 2",
    ("book_snapshots", "spread"): "ask_price - bid_price",
    ("book_snapshots", "spread_bps"): "spread / mid x 1e4",
    ("book_snapshots", "microprice"): "(bid_price x ask_size + ask_price x bid_size) / (bid_size + ask_size)",
    ("book_snapshots", "bid_floor"): "lowest bid price the book's last snapshot covered (below it the book is "
    "not known)",
    ("book_snapshots", "ask_ceiling"): "highest ask price the book's last snapshot covered",
    ("book_snapshots", "bid_px"): "top bid prices, best first (25 levels)",
    ("book_snapshots", "bid_sz"): "sizes of those bid levels",
    ("book_snapshots", "ask_px"): "top ask prices, best first (25 levels)",
    ("book_snapshots", "ask_sz"): "sizes of those ask levels",
    ("book_invalid", "start"): "start of the span with no valid book (exchange time)",
    ("book_invalid", "end"): "end of the span (exclusive)",
    ("book_invalid", "reason"): "why: no snapshot yet, gap, checksum, silent, coverage: ...",
    ("book_heatmap", "ts"): "step time (exchange clock)",
    ("book_heatmap", "step"): "`1s` samples or the `1m` roll-up (mean over the minute's valid samples)",
    ("book_heatmap", "exchange"): "exchange id; `*` for the consolidated heatmap across exchanges",
    ("book_heatmap", "symbol"): "instrument; `BASE-USD*` for the consolidated heatmap (USD-like quotes at par)",
    ("book_heatmap", "side"): "`bid` or `ask`",
    ("book_heatmap", "bucket"): "bucket size (price units): the bucket is [price, price + bucket)",
    ("book_heatmap", "size"): "resting size in the bucket, base units (a roll-up: mean over its samples)",
    ("book_heatmap", "intensity"): "size over the largest bucket's of the same step, both sides: 0..1",
    ("book_heatmap", "exchange_count"): "books with a valid sample at the step (1 for a single book)",
    ("book_heatmap", "samples"): "samples averaged (1 for `1s`)",
    ("book_heatmap", "complete"): "every step of the span was sampled",
    ("trade_heatmap", "minute"): "start of the minute (exchange time)",
    ("trade_heatmap", "price_bucket"): "bucket's lower edge: floor(price / bucket_size) x bucket_size, exact",
    ("trade_heatmap", "bucket_size"): "bucket size (price units)",
    ("trade_heatmap", "buy_size"): "base size bought by takers in the bucket",
    ("trade_heatmap", "sell_size"): "base size sold by takers in the bucket",
    ("trade_heatmap", "buy_count"): "taker-buy fills",
    ("trade_heatmap", "sell_count"): "taker-sell fills",
    ("trade_heatmap", "intensity"): "(buy_size + sell_size) over the minute's largest bucket's, 0..1",
    ("consolidated_book", "ts"): "step time (exchange clock)",
    ("consolidated_book", "base"): "base asset (`BTC`): spot books quoting it in USD-like currencies, at par",
    ("consolidated_book", "best_bid"): "highest bid over the books",
    ("consolidated_book", "best_bid_exchange"): "the exchange with it (first by name on a tie)",
    ("consolidated_book", "best_ask"): "lowest ask over the books",
    ("consolidated_book", "best_ask_exchange"): "the exchange with it (first by name on a tie)",
    ("consolidated_book", "mid"): "(best_bid + best_ask) / 2",
    ("consolidated_book", "crossed"): "best_bid >= best_ask (an arbitrage, or a stale book: see staleness_ms)",
    ("consolidated_book", "exchange_count"): "books with a valid sample at the step",
    ("consolidated_book", "exchanges"): "those books' exchanges (by exchange, symbol)",
    ("consolidated_book", "symbols"): "their symbols, in the same order",
    ("consolidated_book", "staleness_ms"): "each book's age at the step (step time - its last frame's time), ms",
    ("trade_counts", "trades"): "rows of `trades`",
    ("trade_counts", "fills"): "sum of `fills`",
    ("trade_counts", "first_ts"): "first trade time",
    ("trade_counts", "last_ts"): "last trade time",
    ("raw", "recv_ts"): "our receive time of the frame",
    ("raw", "channel"): "stream the frame belongs to (`trade`, `depth`, `bookTicker`, `depthSnapshot`, `control`, ...)",
    ("raw", "symbol"): 'the exchange\'s own instrument id (`BTCUSDT`), `""` for connection-wide frames',
    ("raw", "conn_id"): "the connection that received it (`backfill-...` for REST history)",
    ("raw", "seq"): "frame counter on that connection, from 1",
    ("raw", "payload"): "the frame exactly as received (JSON text)",
    ("events", "recv_ts"): "local time the event refers to",
    ("events", "conn_id"): "the connection it is about",
    ("events", "kind"): "what happened (`mdplatform.exchanges.EventKind`: start, open, subscribed, synced, alive, "
    "close, ...)",
    ("events", "channel"): 'stream, `""` for connection-wide events',
    ("events", "symbol"): 'the exchange\'s own instrument id, `""` for connection-wide events',
    ("events", "seq"): "frames landed on the connection so far",
    ("events", "exchange_ts"): "exchange time of the newest frame that carried one (null: none yet)",
    ("events", "frame_recv_ts"): "when that frame was received",
    ("events", "detail"): "details, in words",
}


def _band(column: str) -> str | None:
    m = _BAND.match(column)
    if m is None:
        return None
    if m.group(1):
        side, bps = m.group(1), m.group(2)
        where = "at or above mid x (1 - X/1e4)" if side == "bid" else "at or below mid x (1 + X/1e4)"
        return f"summed size of the {side} levels {where}, X = {bps} bp (null past what the book's snapshot covered)"
    return f"(bid_depth - ask_depth) / (bid_depth + ask_depth) within {m.group(3)} bp, -1..1 (null when unknown)"


def _ddl_notes(ddl: Sequence[str]) -> tuple[list[str], dict[str, str], dict[tuple[str, str], str]]:
    """(relations in DDL order, relation -> the comment above its CREATE, (relation, column) -> its line's
    comment)."""
    order: list[str] = []
    summaries: dict[str, str] = {}
    columns: dict[tuple[str, str], str] = {}
    for text in ddl:
        lines = text.splitlines()
        for m in _CREATE.finditer(text):
            name = m.group(1)
            order.append(name)
            at = text.count("\n", 0, m.start())
            above: list[str] = []
            for line in reversed(lines[:at]):
                if not line.startswith("--"):
                    break
                above.insert(0, line.removeprefix("--").strip())
            if above:
                summaries[name] = " ".join(above)
            # the statement ends at a line ending in ";" (a comment may hold one: "count); 1 otherwise")
            end = _END.search(text, m.end())
            for line in text[m.end() : end.start() if end else len(text)].splitlines():
                if (c := _COLUMN_COMMENT.match(line)) is not None:
                    columns[(name, c.group(1))] = c.group(2)
    return order, summaries, columns


def relation_columns(ddl: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """relation -> [(column, DuckDB type)] of the catalog made from ``ddl`` over a lake holding every raw tree."""
    table_ddl, view_ddl = split_ddl(ddl)
    con = duckdb.connect(":memory:")
    try:
        for text in [*table_ddl, *view_ddl]:
            con.execute(text)
        with tempfile.TemporaryDirectory() as tmp:
            lake = Path(tmp) / "lake"
            for tree, (schema, _) in MINUTE_TREES.items():
                folder = lake / tree / "exchange=x" / "date=1970-01-01" / "hour=00" / "minute=00"
                folder.mkdir(parents=True)
                pq.write_table(schema.empty_table(), folder / "empty.parquet")
            for statement in lake_view_sql(lake, Path(tmp) / "anchors"):
                con.execute(statement)
            return described_columns(con)
    finally:
        con.close()


def _meaning(relation: str, column: str, notes: dict[tuple[str, str], str]) -> str:
    for name in (relation, _SAME_AS.get(relation)):
        if name is None:
            continue
        for found in (notes.get((name, column)), _MEANINGS.get((name, column))):
            if found:
                return found
    found = _COMMON.get(column) or _band(column)
    if found is None:
        raise KeyError(f"{relation}.{column} has no meaning: add a comment to its DDL line or to _MEANINGS")
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def tables_markdown(ddl: Sequence[str]) -> str:
    """The text of docs/tables.md for ``ddl`` (the files of ``sql/duckdb``)."""
    columns = relation_columns(ddl)
    order, summaries, notes = _ddl_notes(ddl)
    order += [tree for tree in MINUTE_TREES if tree in columns]
    missing = sorted(set(columns) - set(order))
    if missing:
        raise KeyError(f"relations not in the DDL nor the lake views: {missing}")
    out = [
        "# Tables and views",
        "",
        "<!-- generated by `python -m mdplatform.warehouse._tables_doc > docs/tables.md`; do not edit by hand -->",
        "",
        "Every relation a reader of the warehouse sees (`mdp sql`, `<lake>/warehouse.duckdb`, docs/duckdb.md), "
        "with DuckDB's types. The tables' types are the contract of `sql/duckdb/*.sql`; their rows are the lake's "
        "hourly Parquet partitions `<lake>/<table>/date=YYYY-MM-DD/hour=HH/data.parquet`, which keep nanosecond "
        "timestamps (`TIMESTAMP WITH TIME ZONE` here is DuckDB's microseconds, UTC). Decimals are exact.",
        "",
    ]
    for relation in order:
        served = SERVED.get(relation)
        out.append(f"## {relation}")
        out.append("")
        summary = _SUMMARIES.get(relation) or summaries.get(relation)
        if summary is None:
            raise KeyError(f"{relation} has no description: add a comment above its CREATE or to _SUMMARIES")
        out.append(summary)
        if served is not None:
            window = "[H, H + 1h)" if served.closed == "left" else "(H, H + 1h]"
            out += ["", f"Hour partition H holds the rows with `{served.column}` in {window}."]
        out += ["", "| column | type | meaning |", "| --- | --- | --- |"]
        for column, dtype in columns[relation]:
            out.append(f"| `{column}` | {dtype} | {_cell(_meaning(relation, column, notes))} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    from ._duckdb import default_sql_dir

    print(tables_markdown([p.read_text() for p in sorted(default_sql_dir().glob("*.sql"))]), end="")
