"""Imports never stop half-way on a line they cannot read: the line is reported with its number and reason, the
good lines beside it are imported. Lines are real frames of the bundled spot recording, broken as a damaged file
would break them (bytes that are not UTF-8, a receive time in seconds or with 20 digits); a frame with its JSON
spaced out is routed like the compact one."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
from candle_reference import read_lines

from mdplatform.capture import import_capture
from mdplatform.lake import read_raw

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
