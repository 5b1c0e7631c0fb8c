"""OKX v5 end to end: the real ingestor collects from `mdp replay` speaking OKX's WebSocket and REST protocol over a
socket, into a lake; the same capture imported into another lake gives the same trades and candles.

The capture, ``tests/data/okx/OKX.ws.seqid.gz``, is built from OKX's v5 documentation (not recorded; see
``tests/data/okx/make_capture.py`` and its README): BTC-USDT with a seqId gap (an update left out), a keep-alive update
and a maintenance reset of its seqIds; ETH-USDT-SWAP (a perpetual) with one update's checksum wrong; SOL-USDT recorded
as OKX sends books since their snapshot delisting and checksum deprecation: no WS snapshot (a recorded REST reply
instead), checksum 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from _exchange_live import lake_candles, until

from mdplatform.book import book_samples
from mdplatform.capture import import_capture, read_capture
from mdplatform.collector import ExchangeCollectorConfig, IngestConfig
from mdplatform.exchanges.okx import OkxExchange
from mdplatform.ingest import Ingestor
from mdplatform.lake import read_events, read_raw
from mdplatform.replay import ReplayServer
from mdplatform.schemas import TRADES
from mdplatform.transforms import (
    HOUR_NS,
    MINUTE_NS,
    floor_ns,
)

CAPTURE = Path(__file__).parents[1] / "data" / "okx" / "OKX.ws.seqid.gz"
INSTS = ("BTC-USDT", "ETH-USDT-SWAP", "SOL-USDT")
ALL_TIME = (0, 2**62)
HOLD_AT = 890  # frames replayed: about 10:04:10 of the recording, which ends at 10:04:30
OKX = OkxExchange()


def _recorded() -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for f in read_capture(CAPTURE):
        if f.kind == "ws":
            out.setdefault(OKX.route(f.frame), []).append(f.frame)
    return out


class _HeldReplay(ReplayServer):
    """The replay, its cursor held once it has passed ``hold(at, ...)`` frames until the given state is reached.

    At speed 0 the cursor runs the whole recording in a fraction of a second, so whether a resubscribe snapshot or a
    REST reply came back before the last frame went out depended on scheduling. Held near the end until the
    collector has resynced, the frames after it always reach the resynced books. The hook is the cursor's flush (every
    64 frames at speed 0), where it lets the other tasks in."""

    _hold_at = 1 << 62
    _release: Callable[[], bool] = staticmethod(lambda: True)

    def hold(self, at: int, until: Callable[[], bool]) -> None:
        self._hold_at, self._release = at, until

    async def _flush(self, dirty: list[Any]) -> None:
        await super()._flush(dirty)
        if self.position >= self._hold_at:
            self._hold_at = 1 << 62
            await until(self._release, 30, "the state the replay was held for")


def _collect(lake: str) -> tuple[dict[str, object], int, int, int]:
    async def scenario() -> tuple[dict[str, object], int, int, int]:
        # rebase: exchange times just before now (whole minutes), so the trade and book windows take the frames
        held = _HeldReplay([CAPTURE], speed=0, rebase=True, verbose=False)
        async with held as server:
            config = ExchangeCollectorConfig(
                exchange="okx",
                symbols=INSTS,
                channels=("trades", "books"),
                ws_url=server.ws_url,
                rest_url=server.rest_url,
                ping_interval_s=0.3,  # the text "ping" OKX wants on a silent connection (its rule: within 30 s)
            )
            ingestor = Ingestor(IngestConfig((config,)), lake=lake)
            stop = asyncio.Event()
            protocol = server.protocol
            assert protocol is not None
            status = ingestor.manager.get_status

            def resynced() -> bool:
                # both faults met by a resubscribe snapshot, SOL-USDT's REST book spliced: every book synced again
                collector = status()["collectors"][0]
                return bool(
                    protocol.snapshots_sent == 2  # type: ignore[attr-defined]
                    and collector["sync_errors"] == 2
                    and collector["book_sync"] == dict.fromkeys(INSTS, "synced")
                )

            # held ~20 s of the recording before its end (every instrument still has updates to come)
            held.hold(HOLD_AT, resynced)
            task = asyncio.create_task(ingestor.run(stop=stop))
            await server.wait_finished(timeout=60)
            # every frame sent, 6 acks, 2 x (unsubscribe + subscribe) acks, the generated snapshots, a pong at least
            expected = server.sent + 6 + 4 + protocol.snapshots_sent + 1  # type: ignore[attr-defined]
            await until(lambda: status()["messages_received"] >= expected, 30, "every frame and a pong")
            stop.set()
            await task
            return (
                status()["collectors"][0],
                server.sent,
                protocol.snapshots_sent,  # type: ignore[attr-defined]
                server.shift_ns,
            )

    return asyncio.run(scenario())


@pytest.mark.timeout(120)
def test_okx_live_collection_equals_import(tmp_path: Path) -> None:
    live, imported = str(tmp_path / "live"), str(tmp_path / "import")
    recorded = _recorded()
    collector, sent, generated, shift_ns = _collect(live)
    stats = import_capture([CAPTURE], "okx", imported)
    assert stats is not None

    # -- every frame landed, the faults found and resynced for that instId only ---------------------------------
    raw = read_raw(live, *ALL_TIME)
    by_channel = dict(raw.group_by("channel").len().iter_rows())
    n_trades = sum(len(v) for (c, _), v in recorded.items() if c == "trades")
    assert by_channel["trades"] == n_trades == 306
    assert by_channel["books"] + by_channel["trades"] == sent + generated
    assert generated == 2  # the snapshots of BTC-USDT and ETH-USDT-SWAP after their resubscribe
    assert by_channel["depthSnapshot"] == 1  # SOL-USDT's book from GET /api/v5/market/books
    snap = raw.filter(pl.col("channel") == "depthSnapshot")
    assert snap["symbol"].to_list() == ["SOL-USDT"]
    assert orjson.loads(snap["payload"][0])["data"][0]["seqId"] > 412_345  # the book where the replay's cursor was
    control = raw.filter(pl.col("channel") == "control")["payload"].to_list()
    assert "pong" in control  # the keep-alive: "ping" sent on silence, answered
    acks = [orjson.loads(c)["event"] for c in control if c.startswith("{")]
    assert sorted(acks) == ["subscribe"] * 8 + ["unsubscribe"] * 2
    assert collector["book_sync"] == dict.fromkeys(INSTS, "synced")
    assert collector["sync_errors"] == 2 and collector["reconnects"] == 0

    events = read_events(live, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "checksum", "synced"]))
    got = {inst: events.filter(pl.col("symbol") == inst).sort("recv_ts")["kind"].to_list() for inst in INSTS}
    assert got == {
        "BTC-USDT": ["synced", "gap", "synced"],
        "ETH-USDT-SWAP": ["synced", "checksum", "synced"],
        "SOL-USDT": ["synced"],
    }
    gap = events.filter(pl.col("kind") == "gap")["detail"].to_list()
    assert len(gap) == 1 and gap[0].startswith("sequence gap: prevSeqId=")
    bad = events.filter(pl.col("kind") == "checksum")["detail"].to_list()
    assert len(bad) == 1 and bad[0].startswith("checksum mismatch: received ")
    # the import sees the same faults (its recording holds no resubscribe snapshot: those books stay invalid)
    imported_events = read_events(imported, *ALL_TIME).filter(pl.col("kind").is_in(["gap", "checksum", "synced"]))
    assert sorted(imported_events["kind"].to_list()) == ["checksum", "gap", "synced", "synced", "synced"]

    # -- trades: taker side, exchange time, exact numbers; live == import ----------------------------------------
    first_ms = min(int(orjson.loads(f)["data"][0]["ts"]) for (c, _), v in recorded.items() if c == "trades" for f in v)
    hour = floor_ns(first_ms * 1_000_000, HOUR_NS)
    norm_live = OKX.normalize_trades(raw).sort("ts", "symbol", "trade_id")
    norm_import = OKX.normalize_trades(read_raw(imported, *ALL_TIME)).sort("ts", "symbol", "trade_id")
    same = [c for c in TRADES if c != "recv_ts"]
    unshifted = norm_live.with_columns(pl.col("ts") - pl.duration(nanoseconds=shift_ns))
    assert unshifted.select(same).equals(norm_import.select(same))
    assert set(norm_import["symbol"]) == {"BTC-USDT", "ETH-USDT-PERP", "SOL-USDT"}
    first = orjson.loads(recorded[("trades", "ETH-USDT-SWAP")][0])["data"][0]
    row = norm_import.filter((pl.col("symbol") == "ETH-USDT-PERP") & (pl.col("trade_id") == first["tradeId"])).row(
        0, named=True
    )
    assert row["side"] == first["side"] and row["price"] == Decimal(first["px"]) and row["size"] == Decimal(first["sz"])
    assert row["fills"] == int(first["count"])
    assert row["ts"].timestamp() * 1000 == int(first["ts"])
    assert norm_import["fills"].sum() > norm_import.height  # aggregated trades ("count" > 1) counted as fills

    # -- candles: live == import (times unshifted) ---------------------------------------------------------------
    c_import = lake_candles(imported, hour, "1m")
    # every hour the rebased recording touches (it ends just before the minute the test ran in: run in the first
    # minutes of an hour, its first minutes fall in the hour before)
    last_ms = max(
        int(d["ts"]) for (c, _), v in recorded.items() if c == "trades" for f in v for d in orjson.loads(f)["data"]
    )
    lo, hi = (floor_ns(ms * 1_000_000 + shift_ns, HOUR_NS) for ms in (first_ms, last_ms))
    c_live = pl.concat([lake_candles(live, h) for h in range(lo, hi + 1, HOUR_NS)])
    c_live = c_live.filter(pl.col("timeframe") == "1m").sort("symbol", "open_time")
    c_live = c_live.with_columns(pl.col("open_time", "close_time") - pl.duration(nanoseconds=shift_ns))
    # the same candles; only their coverage differs: at speed 0 the live receive clock runs minutes of exchange time
    # in about a second, so live coverage proves less than the import's (which keeps the recorded receive times)
    values = [c for c in c_import.columns if c not in ("complete", "coverage")]
    assert c_live.height == c_import.height == 12
    assert c_live.select(values).equals(c_import.select(values))
    assert c_import.group_by("symbol").agg(pl.col("complete").sum())["complete"].to_list() == [3, 3, 3]
    btc = c_import.filter(pl.col("symbol") == "BTC-USDT")
    minute = btc.filter(pl.col("open_time").dt.minute() == 2).row(0, named=True)
    in_minute = [
        d
        for f in recorded[("trades", "BTC-USDT")]
        for d in orjson.loads(f)["data"]
        if (int(d["ts"]) * 1_000_000 // MINUTE_NS) * MINUTE_NS == minute["open_time"].timestamp() * 10**9
    ]
    assert minute["open"] == Decimal(in_minute[0]["px"]) and minute["close"] == Decimal(in_minute[-1]["px"])
    assert minute["volume"] == sum(Decimal(d["sz"]) for d in in_minute) and minute["trade_count"] == sum(
        int(d["count"]) for d in in_minute
    )  # fills

    # -- book snapshots: the resynced book is sampled again, with the recorded levels ---------------------------
    for inst, reason in (("BTC-USDT", "gap: sequence gap"), ("ETH-USDT-SWAP", "checksum: checksum mismatch")):
        rebuilt = book_samples(raw.filter(pl.col("symbol") == inst), OKX, inst)
        (invalid,) = rebuilt.invalid.iter_rows(named=True)
        assert invalid["reason"].startswith(reason)
        samples = rebuilt.samples.with_columns(ts=pl.col("ts").dt.epoch("ns") - shift_ns)
        after = samples.filter(pl.col("ts") >= invalid["end"].timestamp() * 10**9 - shift_ns)
        before = samples.filter(pl.col("ts") < invalid["start"].timestamp() * 10**9 - shift_ns)
        # sampled every second before the fault and after the resync (where the replay's cursor was when the
        # resubscribe reached it: some tens of seconds of the recording later at speed 0)
        assert before.height > 80 and after.height >= 1
        assert samples.height == before.height + after.height
        for sample in (before.row(40, named=True), after.row(after.height // 2, named=True)):
            bids, asks = _reference_book(recorded[("books", inst)], sample["ts"])
            n = len(sample["bid_px"])
            assert n == len(sample["ask_px"]) == 25  # the sampled top levels
            assert sample["bid_px"] == [float(p) for p, _ in bids[:n]]
            assert sample["bid_sz"] == [float(q) for _, q in bids[:n]]
            assert sample["ask_px"] == [float(p) for p, _ in asks[:n]]
            assert sample["ask_sz"] == [float(q) for _, q in asks[:n]]
    # SOL-USDT's book: live from the REST snapshot the collector fetched (spliced with the stream when it came back,
    # late in the recording at speed 0), imported from the recorded one before its first update
    rest = _recorded_rest()
    for lake_raw, shift, least in ((raw, shift_ns, 1), (read_raw(imported, *ALL_TIME), 0, 200)):
        sol = book_samples(lake_raw.filter(pl.col("symbol") == "SOL-USDT"), OKX, "SOL-USDT")
        assert sol.invalid.height <= 1 and sol.samples.height >= least
        last = sol.samples.with_columns(ts=pl.col("ts").dt.epoch("ns") - shift).row(-1, named=True)
        bids, asks = _reference_book(recorded[("books", "SOL-USDT")], last["ts"], rest=rest)
        assert last["bid_px"] == [float(p) for p, _ in bids[:25]]
        assert last["ask_sz"] == [float(q) for _, q in asks[:25]]


def _recorded_rest() -> dict[str, object]:
    (rest,) = [orjson.loads(f.frame)["data"][0] for f in read_capture(CAPTURE) if f.kind == "rest"]
    return dict(rest)


def _reference_book(
    frames: list[str], at_ns: int, rest: dict[str, object] | None = None
) -> tuple[list[tuple[Decimal, str]], list[tuple[Decimal, str]]]:
    """The book after every recorded push with exchange time at or before ``at_ns``, kept with plain dicts (an
    independent reading of the documented layout: a level's size replaces the previous one, "0" removes it)."""
    sides: dict[str, dict[Decimal, str]] = {"bids": {}, "asks": {}}
    pushes = [orjson.loads(f) for f in frames]
    if rest is not None:
        pushes.insert(0, {"action": "snapshot", "data": [rest]})
    for msg in pushes:
        item = msg["data"][0]
        if int(item.get("ts", 0)) * 1_000_000 > at_ns:
            break
        if msg["action"] == "snapshot":
            sides = {"bids": {}, "asks": {}}
        for name in ("bids", "asks"):
            for px, sz, *_ in item[name]:
                if Decimal(sz) == 0:
                    sides[name].pop(Decimal(px), None)
                else:
                    sides[name][Decimal(px)] = sz
    bids = sorted(sides["bids"].items(), reverse=True)
    asks = sorted(sides["asks"].items())
    return bids, asks
