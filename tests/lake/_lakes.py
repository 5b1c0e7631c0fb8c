"""Helpers of the lake tests: a minute-file lake made from a recording, and what a reader sees of a lake."""

from __future__ import annotations

import polars as pl

from mdplatform.lake import RawWriter, read_events, read_raw

ALL = (0, 2**62)
TRADES = ["trade", "aggTrade"]
BOOKS = ["depth", "depthSnapshot"]


def rewrite_as_minutes(source: str, target: str, writer_id: str = "collector") -> None:
    """The raw rows and events of the lake at ``source`` written again to ``target`` through ``RawWriter``: minute
    files, as the live collector lands them (in receive order, one writer)."""
    raw = read_raw(source, *ALL).sort("conn_id", "seq").sort("recv_ts", maintain_order=True)
    with RawWriter(target, writer_id=writer_id) as writer:
        for r in raw.with_columns(t=pl.col("recv_ts").dt.epoch("ns")).iter_rows(named=True):
            writer.append(r["t"], r["exchange"], r["channel"], r["symbol"], r["conn_id"], r["seq"], r["payload"])
        events = read_events(source, *ALL).with_columns(
            t=pl.col("recv_ts").dt.epoch("ns"),
            ex=pl.col("exchange_ts").dt.epoch("ns"),
            fr=pl.col("frame_recv_ts").dt.epoch("ns"),
        )
        for e in events.iter_rows(named=True):
            writer.event(
                e["t"],
                e["exchange"],
                e["conn_id"],
                e["kind"],
                e["channel"],
                e["symbol"],
                e["seq"],
                e["ex"],
                e["fr"],
                e["detail"],
            )


Snapshot = dict[str, pl.DataFrame]


def snapshot(root: str) -> Snapshot:
    """Everything a reader can see of the lake: each channel group's read (in its order), the whole raw table
    (in (conn_id, seq) order) and the events."""
    return {
        "trades": read_raw(root, *ALL, channels=TRADES),
        "books": read_raw(root, *ALL, channels=BOOKS),
        "all": read_raw(root, *ALL).sort("conn_id", "seq"),
        "events": read_events(root, *ALL),
    }


def assert_same(before: Snapshot, after: Snapshot) -> None:
    for key, df in before.items():
        assert df.height > 0, key
        assert after[key].equals(df), key
