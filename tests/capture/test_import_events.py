"""import_capture records, per session of a recording, the events a live collector would have recorded."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import orjson
import polars as pl
import pytest

from mdplatform.capture import import_capture, read_capture
from mdplatform.lake import read_events, read_raw

SPOT = "binance-hftbacktest/spot"
OKX = "cryptofeed-samples/OKX.ws.1.0.gz"
MINUTE_NS = 60 * 10**9
ALIVE_NS = 5 * 10**9
ALL = (0, 2**62)


def _ns(col: str) -> pl.Expr:
    return pl.col(col).dt.epoch("ns")


def _frames(path: Path) -> list[tuple[int, str, int | None]]:
    """(recv ns, stream, E in ns or None) of every WebSocket frame of a hftbacktest file, parsed independently."""
    out = []
    for f in read_capture(path):
        if f.kind != "ws":
            continue
        msg = orjson.loads(f.frame)
        e = msg["data"].get("E")
        out.append((f.recv_ns, msg["stream"], None if e is None else e * 1_000_000))
    return out


def _events(lake: str, conn_id: str) -> pl.DataFrame:
    return (
        read_events(lake, *ALL)
        .filter(pl.col("conn_id") == conn_id)
        .with_columns(t=_ns("recv_ts"), ex=_ns("exchange_ts"), fr=_ns("frame_recv_ts"))
    )


def _check_session(lake: str, path: Path) -> pl.DataFrame:
    """Every event of the session of one hftbacktest file against the file itself."""
    frames = _frames(path)
    conn_id = f"capture:{path.name.removesuffix('.gz')}"
    ev = _events(lake, conn_id)
    first_recv = frames[0][0]
    (opened,) = ev.filter(pl.col("kind") == "open").iter_rows(named=True)
    assert (opened["t"], opened["seq"], opened["ex"], opened["detail"]) == (first_recv, 0, None, f"capture {path.name}")
    assert ev.row(0, named=True)["kind"] == "open"

    # subscribed: each stream the capture shows, from the session's start (Binance names its streams at connect
    # time, so the connection carried a stream before its first frame), recorded when it first appears
    streams = {"btcusdt@depth@100ms": "depth", "btcusdt@trade": "trade", "btcusdt@bookTicker": "bookTicker"}
    first_seen: dict[str, int] = {}
    for seq, (_, stream, _) in enumerate(frames, 1):
        first_seen.setdefault(streams[stream], seq)
    subscribed = ev.filter(pl.col("kind") == "subscribed")
    assert set(subscribed["symbol"]) == {"BTCUSDT"}
    firsts = subscribed.group_by("channel").agg(pl.col("t").min(), pl.col("seq").min())
    assert {ch: (t, seq) for ch, t, seq in firsts.iter_rows()} == {ch: (first_recv, n) for ch, n in first_seen.items()}

    # start: the first frame carrying an exchange time
    (start,) = ev.filter(pl.col("kind") == "start").iter_rows(named=True)
    seq0, (recv0, _, e0) = next((i, f) for i, f in enumerate(frames, 1) if f[2] is not None)
    assert (start["t"], start["seq"], start["ex"], start["fr"]) == (recv0, seq0, e0, recv0)

    # alive: at the first frame at or after 5 s of receive time since the previous one (or the open), carrying
    # the newest (largest) exchange time received so far and the receive time of the frame that carried it
    expected = []
    due = first_recv + ALIVE_NS
    newest: tuple[int, int] | None = None
    for seq, (recv, _, e) in enumerate(frames, 1):
        if e is not None and (newest is None or e > newest[0]):
            newest = (e, recv)
        if recv >= due:
            assert newest is not None
            expected.append((recv, seq, *newest))
            due = recv + ALIVE_NS
    alive = ev.filter(pl.col("kind") == "alive")
    assert alive.select("t", "seq", "ex", "fr").rows() == expected
    assert len(expected) > 30
    assert (alive["t"].diff().drop_nulls() >= ALIVE_NS).all()
    assert alive["ex"].is_sorted()

    # subscribed is restated with the first alive of each new receive minute: exactly once per stream and minute
    minutes = alive.with_columns(m=pl.col("t") // MINUTE_NS).group_by("m").agg(pl.col("t").min()).sort("m")
    restated = subscribed.filter(pl.col("t") > first_recv)
    assert restated.height == 3 * (minutes.height - (first_recv // MINUTE_NS == minutes["m"][0]))
    per_minute = restated.group_by(pl.col("t") // MINUTE_NS, "channel").len()
    assert set(per_minute["len"]) == {1}
    assert set(restated["t"]) <= set(minutes["t"])

    # close: at the last frame, with the largest exchange time of the file
    (close,) = ev.filter(pl.col("kind") == "close").iter_rows(named=True)
    largest = max(e for _, _, e in frames if e is not None)
    assert (close["t"], close["seq"], close["ex"], close["detail"]) == (
        frames[-1][0],
        len(frames),
        largest,
        "end of capture",
    )
    assert ev.row(-1, named=True)["kind"] == "close"
    return ev


def test_spot_recording_is_two_sessions_with_their_events(shared_data: Path, lake: str) -> None:
    paths = [shared_data / SPOT / "btcusdt_20240808.gz", shared_data / SPOT / "btcusdt_20240809.gz"]
    stats = import_capture(paths, "binance", root=lake)
    assert stats.sessions == 2
    all_events = read_events(lake, *ALL)
    assert set(all_events["conn_id"]) == {"capture:btcusdt_20240808", "capture:btcusdt_20240809"}
    for path in paths:
        _check_session(lake, path)
    # the recorded REST snapshot synced the book on the first session; seq restarts per session
    synced = all_events.filter(pl.col("kind") == "synced")
    assert synced.select("conn_id", "channel", "symbol").rows() == [("capture:btcusdt_20240808", "depth", "BTCUSDT")]
    raw = read_raw(lake, *ALL)
    snapshot_recv = raw.filter(pl.col("channel") == "depthSnapshot")["recv_ts"].item()
    assert synced["recv_ts"].item() == snapshot_recv
    assert stats.events == dict(all_events.group_by("kind").len().iter_rows())
    assert "2 session(s)" in stats.summary()
    # re-importing replaces events like it replaces frames
    import_capture(paths, "binance", root=lake)
    assert read_events(lake, *ALL).height == all_events.height


def test_a_cut_out_stretch_has_no_alive_rows(shared_data: Path, lake: str, tmp_path: Path) -> None:
    src = shared_data / SPOT / "btcusdt_20240808.gz"
    with gzip.open(src, "rt") as fh:
        lines = fh.readlines()
    first = int(lines[0].split(" ", 1)[0])
    cut_from, cut_to = first + 60 * 10**9, first + 240 * 10**9  # three minutes of the recording
    kept = [line for line in lines if not cut_from <= int(line.split(" ", 1)[0]) < cut_to]
    assert len(lines) - len(kept) > 15_000
    path = tmp_path / "btcusdt_cut.gz"
    with gzip.open(path, "wt") as out:
        out.writelines(kept)
    import_capture([path], "binance", root=lake)
    ev = _check_session(lake, path)
    alive = ev.filter(pl.col("kind") == "alive")
    assert alive.filter(pl.col("t").is_between(cut_from, cut_to, closed="left")).height == 0
    # the first alive after the cut sits on the first frame after it
    after = alive.filter(pl.col("t") >= cut_to)["t"].min()
    assert after == min(int(line.split(" ", 1)[0]) for line in kept if int(line.split(" ", 1)[0]) >= cut_to)
    # no subscribed restatement for the minutes without frames either
    minutes = set((ev.filter(pl.col("kind") == "subscribed")["t"] // MINUTE_NS).to_list())
    assert not minutes & set(range((cut_from // MINUTE_NS) + 1, cut_to // MINUTE_NS))
    # the book session saw the depth ids jump at the first depth frame after the cut
    (gap,) = ev.filter(pl.col("kind") == "gap").iter_rows(named=True)
    first_depth_after = next(
        int(line.split(" ", 1)[0]) for line in kept if int(line.split(" ", 1)[0]) >= cut_to and "@depth" in line[:60]
    )
    assert (gap["t"], gap["channel"], gap["symbol"]) == (first_depth_after, "depth", "BTCUSDT")
    assert "U=" in gap["detail"]


def test_okx_subscriptions_come_from_the_recorded_acks(shared_data: Path, lake: str) -> None:
    path = shared_data / OKX
    import_capture([path], "okx", root=lake)
    ev = _events(lake, "capture:OKX.ws.1.0:1")
    frames = list(read_capture(path, connects=True))
    connect, received = frames[0], frames[1:]
    acks = [(i, f) for i, f in enumerate(received, 1) if f.frame.startswith('{"event":"subscribe"')]
    assert len(acks) == 18
    (opened,) = ev.filter(pl.col("kind") == "open").iter_rows(named=True)
    assert (opened["t"], opened["detail"]) == (connect.recv_ns, "wss://ws.okx.com:8443/ws/v5/public")
    subscribed = ev.filter(pl.col("kind") == "subscribed")
    expected = []
    for seq, ack in acks:
        arg = orjson.loads(ack.frame)["arg"]
        expected.append((ack.recv_ns, seq, arg["channel"], arg["instId"]))
    assert subscribed.select("t", "seq", "channel", "symbol").rows() == expected
    assert subscribed.select("channel", "symbol").unique().height == 9
    # start at the first push carrying a ts; books snapshots sync; one alive per 5 s; close at the last frame
    (start,) = ev.filter(pl.col("kind") == "start").iter_rows(named=True)
    assert start["seq"] == 19 and start["t"] == received[18].recv_ns
    assert start["ex"] == int(orjson.loads(received[18].frame)["data"][0]["ts"]) * 1_000_000
    synced = ev.filter(pl.col("kind") == "synced")
    assert sorted(synced["symbol"]) == ["BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP"]
    assert set(synced["channel"]) == {"books"}
    assert ev.filter(pl.col("kind") == "alive").height == 2
    assert ev.filter(pl.col("kind").is_in(["gap", "checksum", "sub_error"])).height == 0
    (close,) = ev.filter(pl.col("kind") == "close").iter_rows(named=True)
    assert (close["t"], close["seq"], close["detail"]) == (received[-1].recv_ns, 410, "end of capture")


def test_a_reconnect_line_starts_a_new_session(shared_data: Path, lake: str, tmp_path: Path) -> None:
    with gzip.open(shared_data / OKX, "rt") as fh:
        lines = fh.readlines()
    # the same connection recorded twice in a row, 100 s apart: the second connect line closes the first session
    stamp = re.compile(r"^(\S+ <-?>? )?(\d+)\.(\d+)")

    def later(line: str) -> str:
        return stamp.sub(lambda m: f"{m.group(1) or ''}{int(m.group(2)) + 100}.{m.group(3)}", line, count=1)

    path = tmp_path / "OKX.ws.2.0"
    path.write_text("".join(lines) + "".join(later(line) for line in lines))
    stats = import_capture([path], "okx", root=lake)
    assert stats.sessions == 2 and stats.rows == 820
    ev = read_events(lake, *ALL)
    assert ev.filter(pl.col("kind") == "open")["conn_id"].to_list() == ["capture:OKX.ws.2.0:1", "capture:OKX.ws.2.0:2"]
    closes = ev.filter(pl.col("kind") == "close")
    assert closes.select("conn_id", "detail", "seq").rows() == [
        ("capture:OKX.ws.2.0:1", "reconnect in capture", 410),
        ("capture:OKX.ws.2.0:2", "end of capture", 410),
    ]
    raw = read_raw(lake, *ALL)
    per_conn = (
        raw.group_by("conn_id")
        .agg(pl.col("seq").min().alias("lo"), pl.col("seq").max().alias("hi"), pl.len())
        .sort("conn_id")
    )
    assert per_conn.rows() == [("capture:OKX.ws.2.0:1", 1, 410, 410), ("capture:OKX.ws.2.0:2", 1, 410, 410)]


def test_alive_every_is_a_parameter(shared_data: Path, lake: str) -> None:
    import_capture([shared_data / OKX], "okx", root=lake, alive_every_s=1.0)
    alive = read_events(lake, *ALL).filter(pl.col("kind") == "alive")
    assert alive.height >= 9
    assert (alive["recv_ts"].diff().drop_nulls().dt.total_nanoseconds() >= 10**9).all()
    with pytest.raises(ValueError, match="alive_every_s"):
        import_capture([shared_data / OKX], "okx", root=lake, alive_every_s=0)


def test_rest_only_capture_has_no_session(shared_data: Path, lake: str) -> None:
    stats = import_capture([shared_data / "cryptofeed-samples/BINANCE.http.0.0.gz"], None, root=lake)
    assert stats.sessions == 0 and stats.events == {}
    assert read_events(lake, *ALL).height == 0
    assert set(read_raw(lake, *ALL)["conn_id"]) == {"capture:BINANCE.http.0.0/rest"}


def test_import_capture_command_reports_sessions_and_events(shared_data: Path, lake: str) -> None:
    from click.testing import CliRunner

    from mdplatform.cli import cli

    args = ["import-capture", str(shared_data / OKX), "--exchange", "okx", "--lake", lake, "--alive-every", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 session(s), events alive=5, close=1, open=1, start=1, subscribed=18, synced=3;" in result.output
    assert read_events(lake, *ALL).height == 29
    bad = CliRunner().invoke(cli, [*args[:-1], "0"])
    assert bad.exit_code != 0 and "--alive-every" in bad.output
