"""Frames that arrive whole but say something impossible: malformed JSON, NaN, infinite or negative prices and
sizes. A book frame like that is quarantined while collecting (a ``frame_error`` event with its seq and the
reason), its stream marked out of sync (``gap``) and the connection starts over for a fresh book; a trade frame is
landed as it came (trades are not parsed while collecting) and quarantined with its reason when normalized."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import orjson
import polars as pl
import pytest
from _faults import (
    Conn,
    FeedServer,
    Outcome,
    Probe,
    assert_landed_as_sent,
    binance_frames,
    collector,
    coverage,
    ingest,
    okx_frames,
    okx_subscribe,
    rebased,
)
from _reliability import record

from mdplatform.book import L2Book
from mdplatform.exchanges import get_exchange, normalize_trades_with_rejects
from mdplatform.exchanges.okx._replay import _ServerBook  # how OKX builds a snapshot from its book, as the replay does


@pytest.mark.parametrize(
    ("price", "size", "reason"),
    [
        ("NaN", "1", "price 'NaN' is not a finite positive number"),
        ("inf", "1", "price 'inf' is not a finite positive number"),
        ("-1", "1", "price '-1' is not a finite positive number"),
        ("0", "1", "price '0' is not a finite positive number"),
        ("100", "NaN", "size 'NaN' (at price '100') is not a finite number >= 0"),
        ("100", "-Infinity", "size '-Infinity' (at price '100') is not a finite number >= 0"),
        ("100", "-0.5", "size '-0.5' (at price '100') is not a finite number >= 0"),
        (float("nan"), 1.0, "price nan is not a finite positive number"),
    ],
)
def test_the_book_refuses_impossible_levels_naming_the_value(
    price: str | float, size: str | float, reason: str
) -> None:
    book = L2Book("BTCUSDT")
    book.apply([["99", "2"]], [["101", "3"]])
    with pytest.raises(ValueError) as err:
        book.apply([[price, size]], [])
    assert str(err.value) == reason
    book.apply([["99", "0"]], [["101", "0.5"]])  # a zero size still removes its level
    assert book.bids() == [] and book.asks() == [(101.0, 0.5)]


def test_a_binance_book_built_from_a_nan_diff_stops_there(shared_data: Path) -> None:
    # the collector keeps Binance books as update ids only (no levels on the hot path); whoever builds the book
    # from the landed frames is stopped at the impossible level
    builder = get_exchange("binance").book_builder("BTCUSDT")
    diff = orjson.loads(binance_frames(shared_data, "btcusdt@depth@100ms", 1)[0])
    builder.on_snapshot({"lastUpdateId": diff["data"]["U"] - 1, "bids": [], "asks": []})
    diff["data"]["b"] = [["61000.00000000", "NaN"]]
    with pytest.raises(ValueError, match=re.escape("size 'NaN' (at price '61000.00000000')")):
        builder.on_depth(diff)


def _level(side: str, index: int, value: str) -> Callable[[str], str]:
    def broken(frame: str) -> str:
        obj = orjson.loads(frame)
        obj["data"][0][side][0][index] = value
        return orjson.dumps(obj).decode()

    return broken


#: fault -> (how an update is broken, how the quarantine explains it)
BROKEN = {
    "malformed JSON": (lambda f: f[: len(f) // 2], "could not be interpreted: JSONDecodeError: "),
    "NaN size": (_level("bids", 1, "NaN"), "could not be interpreted: ValueError: size 'NaN' (at price '"),
    "infinite price": (_level("asks", 0, "inf"), "could not be interpreted: ValueError: price 'inf' is not a finite"),
    "negative size": (_level("asks", 1, "-0.5"), "could not be interpreted: ValueError: size '-0.5' (at price '"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", list(BROKEN))
def test_an_impossible_okx_book_update_is_quarantined_and_the_book_resyncs(
    tmp_path: Path, shared_data: Path, fault: str
) -> None:
    snapshot, u1, u2, u3, u4 = rebased(okx_frames(shared_data, "books", "BTC-USDT", 5))
    breaks, reason = BROKEN[fault]
    broken = breaks(u2)
    # what OKX sends a new subscriber: its book as it stands (here after u3), then the updates that follow
    book = _ServerBook("BTC-USDT")
    for frame in (snapshot, u1, u2, u3):
        msg = orjson.loads(frame)
        book.apply(msg["action"], msg["data"][0])
    fresh = book.snapshot(msg["arg"], 400, 0).decode()

    async def script(conn: Conn) -> None:
        await okx_subscribe(conn)
        await conn.send_all([snapshot, u1, broken] if conn.n == 1 else [fresh, u4])

    async def scenario() -> tuple[Outcome, FeedServer]:
        async with FeedServer(script) as server:

            async def drive(probe: Probe) -> None:
                await probe.until_received(4 + 3)  # an ack and three frames, then an ack and two

            return await ingest(tmp_path, [collector("okx", ["BTC-USDT"], ["books"], server.url)], drive), server

    out, server = asyncio.run(scenario())
    assert_landed_as_sent(out, server)  # the broken frame included, exactly as it came
    first, second = out.conn_ids
    flagged = out.kind("frame_error").select("conn_id", "seq", "channel", "symbol", "detail").rows()
    assert len(flagged) == 1 and flagged[0][:4] == (first, 4, "books", "BTC-USDT"), flagged
    assert flagged[0][4].startswith(reason), flagged
    gaps = out.kind("gap").select("conn_id", "detail", "exchange_ts").rows()
    # with the exchange time coverage needs to take the book out from there until the next synced
    assert gaps == [(first, f"frame 4 (books BTC-USDT) {flagged[0][4]}", gaps[0][2])] and gaps[0][2] is not None
    assert out.close_detail(first) == f"resync after an uninterpretable book frame: {gaps[0][1]}"
    assert out.kind("synced").get_column("conn_id").to_list() == [first, second]
    status = out.status
    assert status["reconnects"] == 1 and status["frame_errors"] == 1 and status["collectors"][0]["sync_errors"] == 1
    assert out.health["status"] == "healthy" and status["collectors"][0]["book_sync"] == {"BTC-USDT": "synced"}
    # coverage reads these events (frame_error among them) as it reads any: the book stream has its rows
    assert coverage(out).get_column("channel").unique().to_list() == ["books"]
    synced_at = out.kind("synced").filter(pl.col("conn_id") == second).get_column("recv_ts")[0]
    recover = (synced_at - out.raw.filter(pl.col("payload") == broken).get_column("recv_ts")[0]) / 1e9
    record(
        f"OKX book update: {fault}",
        received=7,
        landed=6,
        quarantined=1,
        lost=0,
        duplicated=0,
        recover_s=recover,
        note="frame_error and gap events, reconnect, a fresh snapshot synced the book again (time to recover: "
        "until then)",
    )


@pytest.mark.timeout(60)
def test_impossible_binance_trades_are_landed_and_quarantined_when_normalized(
    tmp_path: Path, shared_data: Path
) -> None:
    good = binance_frames(shared_data, "btcusdt@trade", 7)
    bad = {  # real trades, each broken in its own way -> the reason it is quarantined with
        good[1][: len(good[1]) // 2]: "payload is not a trade event in the documented layout",
        _with(good[3], "p", "NaN"): "price is not a plain decimal number: NaN",
        _with(good[5], "q", "-1"): "size is not positive: -1",
    }
    broken = list(bad)
    frames = [good[0], broken[0], good[2], broken[1], good[4], broken[2], good[6]]

    async def script(conn: Conn) -> None:
        await conn.send_all(frames)

    async def scenario() -> tuple[Outcome, FeedServer]:
        async with FeedServer(script) as server:

            async def drive(probe: Probe) -> None:
                await probe.until_received(len(frames))

            return await ingest(tmp_path, [collector("binance", ["BTCUSDT"], ["trade"], server.url)], drive), server

    out, server = asyncio.run(scenario())
    assert_landed_as_sent(out, server)
    assert out.status["frame_errors"] == 0 and out.status["reconnects"] == 0 and out.kind("frame_error").height == 0
    trades, rejects = normalize_trades_with_rejects("binance", out.raw)
    assert trades.height == 4
    assert dict(rejects.select("payload", "reason").rows()) == bad
    record(
        "Binance trades: malformed JSON, NaN price, negative size",
        received=len(frames),
        landed=trades.height,
        quarantined=rejects.height,
        lost=0,
        duplicated=0,
        recover_s=None,
        note="landed as received (trades are not parsed while collecting), quarantined with their reasons when "
        "normalized; the connection never paused",
    )


def _with(frame: str, key: str, value: str) -> str:
    return re.sub(f'"{key}":"[^"]*"', f'"{key}":"{value}"', frame, count=1)
