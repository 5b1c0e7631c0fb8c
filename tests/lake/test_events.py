"""The events table beside the raw layer: same minute partitions, same atomic files, same flush points."""

from __future__ import annotations

import glob
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from mdplatform.lake import MINUTE_NS, RawWriter, list_raw_minutes, raw_minute_bounds, read_events, read_raw
from mdplatform.schemas import EVENTS, EVENTS_ARROW

T0 = 1_723_161_253_937_085_768  # 2024-08-08 23:54:13.937 UTC
M0 = T0 - T0 % MINUTE_NS
ALL = (0, 2**62)


def _ev(writer: RawWriter, ts: int, kind: str, seq: int = 0, exchange: str = "binance", **kw: object) -> None:
    writer.event(
        ts,
        exchange,
        str(kw.get("conn_id", "c1")),
        kind,
        str(kw.get("channel", "")),
        str(kw.get("symbol", "")),
        seq,
        kw.get("exchange_ts"),  # type: ignore[arg-type]
        kw.get("frame_recv_ts"),  # type: ignore[arg-type]
        str(kw.get("detail", "")),
    )


def test_events_land_in_their_receive_minute_and_read_back(lake: str) -> None:
    with RawWriter(lake, writer_id="w") as writer:
        _ev(writer, T0, "open", detail="ws://x/stream?streams=btcusdt@trade")
        _ev(writer, T0, "subscribed", channel="trade", symbol="BTCUSDT")
        _ev(writer, T0 + 10, "start", 1, exchange_ts=T0 + 1_000, frame_recv_ts=T0 + 10)
        _ev(writer, M0 + MINUTE_NS + 5, "alive", 7, exchange_ts=T0 + 2_000, frame_recv_ts=T0 + 20)
        _ev(writer, M0 + 2 * MINUTE_NS, "close", 9, exchange="okx", detail="stopped")
        writer.append(T0, "binance", "trade", "BTCUSDT", "c1", 1, "{}")
        assert writer.buffered_events == 5 and writer.buffered_rows == 1
    assert writer.stats.events_written == 5 and writer.stats.event_files_written == 3
    assert writer.stats.rows_written == 1 and writer.stats.files_written == 1  # frames are counted apart

    files = sorted(glob.glob(f"{lake}/events/**/*.parquet", recursive=True))
    assert [f.removeprefix(f"{lake}/") for f in files] == [
        "events/exchange=binance/date=2024-08-08/hour=23/minute=54/part-w-00000.parquet",
        "events/exchange=binance/date=2024-08-08/hour=23/minute=55/part-w-00000.parquet",
        "events/exchange=okx/date=2024-08-08/hour=23/minute=56/part-w-00000.parquet",
    ]
    assert all(pq.read_schema(f).equals(EVENTS_ARROW) for f in files)
    assert not [p for p in Path(lake).rglob("*.tmp")]

    df = read_events(lake, *ALL)
    assert df.schema == pl.Schema(EVENTS)
    assert df["kind"].to_list() == ["open", "subscribed", "start", "alive", "close"]
    assert df["recv_ts"].dt.epoch("ns").to_list() == [T0, T0, T0 + 10, M0 + MINUTE_NS + 5, M0 + 2 * MINUTE_NS]
    start = df.row(2, named=True)
    assert (start["seq"], start["channel"], start["symbol"]) == (1, "", "")
    assert df["exchange_ts"].dt.epoch("ns").to_list() == [None, None, T0 + 1_000, T0 + 2_000, None]
    assert df["frame_recv_ts"].dt.epoch("ns").to_list() == [None, None, T0 + 10, T0 + 20, None]
    assert df.row(0, named=True)["exchange_ts"] is None and df.row(0, named=True)["frame_recv_ts"] is None
    assert df.row(0, named=True)["detail"] == "ws://x/stream?streams=btcusdt@trade"
    # windows, exchanges and the minute listing of the events tree
    assert read_events(lake, M0, M0 + MINUTE_NS)["kind"].to_list() == ["open", "subscribed", "start"]
    assert read_events(lake, *ALL, exchanges=["okx"])["detail"].to_list() == ["stopped"]
    assert sorted(list_raw_minutes(lake, *ALL, table="events")) == [
        ("binance", M0),
        ("binance", M0 + MINUTE_NS),
        ("okx", M0 + 2 * MINUTE_NS),
    ]
    assert sorted(list_raw_minutes(lake, *ALL)) == [("binance", M0)]  # the raw tree alone
    assert read_raw(lake, *ALL).height == 1


def test_event_minutes_follow_the_frames_flush_points(lake: str) -> None:
    writer = RawWriter(lake, writer_id="w")
    _ev(writer, T0, "alive", 1)
    _ev(writer, M0 + MINUTE_NS + 1, "alive", 2)
    assert writer.flush_closed(now_ns=M0 + MINUTE_NS - 1) == 0
    writer.wait()
    assert read_events(lake, *ALL).height == 0  # the minute is not closed: nothing on storage
    writer.flush_closed(now_ns=M0 + MINUTE_NS)
    writer.wait()
    assert read_events(lake, *ALL)["seq"].to_list() == [1]
    assert writer.buffered_events == 1
    # a late event (a pong for a ping sent in a minute already written) becomes another part of that minute
    _ev(writer, T0 + 5, "alive", 3)
    writer.flush_closed(now_ns=M0 + MINUTE_NS + 2)
    writer.wait()
    parts = sorted(Path(lake, "events/exchange=binance/date=2024-08-08/hour=23/minute=54").glob("*.parquet"))
    assert [p.name for p in parts] == ["part-w-00000.parquet", "part-w-00001.parquet"]
    writer.close()  # writes what is left (minute 55)
    df = read_events(lake, *ALL)
    assert df["seq"].to_list() == [1, 3, 2]  # by receive time
    assert writer.stats.event_files_written == 3


def test_same_writer_id_rewrites_events_instead_of_duplicating(lake: str) -> None:
    for _ in range(2):
        with RawWriter(lake, writer_id="capture-x") as writer:
            for i in range(10):
                _ev(writer, T0 + i, "alive", i)
    assert read_events(lake, *ALL).height == 10


def test_minute_bounds_see_event_minutes_without_frames(lake: str) -> None:
    assert raw_minute_bounds(lake) is None
    with RawWriter(lake) as writer:
        writer.append(T0, "binance", "trade", "BTCUSDT", "c", 1, "{}")
        _ev(writer, T0 + 3 * MINUTE_NS, "alive", 1, exchange="okx")  # a quiet market: events, no frames
        _ev(writer, T0 - 2 * MINUTE_NS, "open", exchange="binance")
    assert raw_minute_bounds(lake) == (M0 - 2 * MINUTE_NS, M0 + 3 * MINUTE_NS)


def test_an_empty_window_gives_the_events_schema(lake: str) -> None:
    df = read_events(lake, T0, T0 + MINUTE_NS)
    assert df.height == 0 and df.schema == pl.Schema(EVENTS)


def test_events_on_s3(moto_s3: dict[str, str]) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3["MDP_S3_ENDPOINT"])
    s3.create_bucket(Bucket="events-lake")  # moto's state outlives one server: a bucket of its own
    with RawWriter("s3://events-lake/mdp", writer_id="w") as writer:
        for i in range(5):
            _ev(writer, T0 + i * 20 * 10**9, "alive", i, exchange_ts=T0 + i, frame_recv_ts=T0)
    df = read_events("s3://events-lake/mdp", *ALL)
    assert df["seq"].to_list() == [0, 1, 2, 3, 4]
    keys = sorted(k["Key"] for k in s3.list_objects_v2(Bucket="events-lake")["Contents"])
    assert [k for k in keys if not k.startswith("mdp/_landed/")] == [
        "mdp/events/exchange=binance/date=2024-08-08/hour=23/minute=54/part-w-00000.parquet",
        "mdp/events/exchange=binance/date=2024-08-08/hour=23/minute=55/part-w-00000.parquet",
    ]


@pytest.mark.parametrize("max_rows", [3])
def test_a_full_event_buffer_is_written_early(lake: str, max_rows: int) -> None:
    writer = RawWriter(lake, max_rows=max_rows, writer_id="w")
    for i in range(7):
        _ev(writer, T0 + i, "alive", i)
    writer.wait()
    assert writer.stats.event_files_written == 2 and writer.buffered_events == 1
    writer.close()
    assert read_events(lake, *ALL)["seq"].to_list() == list(range(7))
