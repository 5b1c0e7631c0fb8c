"""Imports never stop half-way on a line they cannot read: the line is reported with its number and reason, the
good lines beside it are imported. Lines are real frames of the bundled spot recording, broken as a damaged file
would break them (bytes that are not UTF-8, a receive time in seconds or with 20 digits); a frame with its JSON
spaced out is routed like the compact one."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import polars as pl
from candle_reference import read_lines

from mdplatform.capture import import_capture
from mdplatform.lake import read_events, read_raw

SPOT = "binance-hftbacktest/spot/btcusdt_20240808.gz"


def test_bad_lines_are_reported_and_the_rest_imported(tmp_path: Path, shared_data: Path) -> None:
    lines = [(r, f) for r, f in read_lines(shared_data / SPOT)[:200] if '"btcusdt@trade"' in f][:6]
    assert len(lines) == 6
    (r0, f0), (r1, f1), (r2, f2), (r3, f3), (r4, f4), (r5, f5) = lines
    spaced = f5.replace('":', '": ').replace(",", ", ")
    body = b"\n".join(
        [
            f"{r0} {f0}".encode(),
            f"{r1} {f1}".encode()[:40] + b"\xff\xfe\xfd" + f"{r1} {f1}".encode()[40:],  # not UTF-8
            f"{r2 // 10**9} {f2}".encode(),  # seconds, not nanoseconds
            f"{r3}0 {f3}".encode(),  # 20 digits
            f"{r4} {f4}".encode(),
            f"{r5} {spaced}".encode(),
        ]
    )
    path = tmp_path / "damaged.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(body + b"\n")
    stats = import_capture([path], "binance", str(tmp_path / "lake"))
    assert [(b.line, b.reason) for b in stats.bad_lines] == [
        (2, "not UTF-8"),
        (3, f"receive time {r2 // 10**9} is not nanoseconds between 2009-01-01 and tomorrow"),
        (4, f"receive time {r3}0 is not nanoseconds between 2009-01-01 and tomorrow"),
    ]
    assert "\\xff\\xfe\\xfd" in stats.bad_lines[0].text
    assert "3 unreadable line(s), first" in stats.summary()
    raw = read_raw(str(tmp_path / "lake"), 0, 2**62).sort("recv_ts")
    assert raw.get_column("payload").to_list() == [f0, f4, spaced]
    # the spaced frame is routed like the compact ones (not to "control")
    assert raw.select("channel", "symbol").unique().rows() == [("trade", "BTCUSDT")]
    assert raw.filter(pl.col("payload") == spaced).height == 1


def test_a_book_frame_that_cannot_be_interpreted_is_flagged_and_the_import_goes_on(
    tmp_path: Path, shared_data: Path
) -> None:
    lines = read_lines(shared_data / SPOT)[:400]
    depth = [i for i, (_, f) in enumerate(lines) if '"btcusdt@depth@100ms"' in f]
    broken_at = depth[1]
    recv, frame = lines[broken_at]
    data = orjson.loads(frame)
    del data["data"]["U"], data["data"]["u"]  # the book's update chain cannot go through it
    broken = orjson.dumps(data).decode()
    lines[broken_at] = (recv, broken)
    path = tmp_path / "capture.gz"
    with gzip.open(path, "wt") as fh:
        fh.writelines(f"{r} {f}\n" for r, f in lines)
    stats = import_capture([path], "binance", str(tmp_path / "lake"))
    assert stats.bad_lines == [] and stats.rows == len(lines)  # every line imported, the broken frame included
    assert stats.events["frame_error"] == 1
    events = read_events(str(tmp_path / "lake"), 0, 2**62)
    flagged = events.filter(pl.col("kind") == "frame_error").select(
        pl.col("recv_ts").dt.epoch("ns"), "symbol", "detail"
    )
    assert flagged.rows() == [
        (recv, "BTCUSDT", "could not be interpreted: ValueError: binance BTCUSDT: depth frame without U/u update ids")
    ]
    gaps = events.filter(pl.col("kind") == "gap").get_column("detail").to_list()
    assert gaps and "depth frame without U/u" in gaps[0]
