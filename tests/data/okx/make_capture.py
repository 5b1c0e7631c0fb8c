"""Builds ``OKX.ws.seqid.gz``: an OKX v5 public-channel recording in cryptofeed's text format, built from the
documentation (not recorded): run ``python tests/data/okx/make_capture.py`` to rebuild it (deterministic).

Layouts followed (OKX API v5 docs, https://www.okx.com/docs-v5/en/, checked 2026-12):
- "WS / Order book channel": ``{"arg":{"channel":"books","instId":..},"action":"snapshot"|"update","data":[{"asks":
  [[px, sz, "0", orders], ...],"bids":[...],"ts":"<ms>","checksum":<int>,"prevSeqId":<int>,"seqId":<int>}]}``; the
  snapshot's prevSeqId is -1, each update's prevSeqId the previous seqId; the keep-alive update has empty sides and
  prevSeqId == seqId; a maintenance reset is an update whose seqId is smaller than its prevSeqId, and the updates
  after it chain on from there ("Sequence ID", its worked example). Checksum: signed CRC32 of the top 25 levels.
- help centre "OKX Order Book Channels Checksum Field Deprecation": checksum 0 from 2026-06-23 (SOL-USDT here).
- API changelog "Delist initial snapshot and checksum field in order book channels": no WS snapshot; the book comes
  from ``GET /api/v5/market/books`` with its ``seqId`` (SOL-USDT: a recorded REST reply, then updates only).
- "WS / Trades channel": ``{"arg":{"channel":"trades","instId":..},"data":[{"instId","tradeId","px","sz","side",
  "ts","count","source","seqId"}]}``, ``side`` the taker's, ``count`` the fills aggregated (tradeId the last one).
- "WS / Overview": subscribe acks ``{"event":"subscribe","arg":{...},"connId":..}``, text "ping"/"pong".

Streams: BTC-USDT (spot), ETH-USDT-SWAP (perpetual) and SOL-USDT, channels ``trades`` and ``books``, from
2026-12-01 10:00:50 to 10:04:30 UTC. Forced faults: one BTC-USDT update is left out of the recording (a seqId gap:
it changed a level 40 deep, so the top-25 checksums after it still verify the book a replay keeps); one
ETH-USDT-SWAP update carries a wrong checksum (the real one + 1). BTC-USDT also has a keep-alive update and a
maintenance reset of its seqIds.
"""

from __future__ import annotations

import gzip
import random
import sys
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

URL = "wss://ws.okx.com:8443/ws/v5/public"
REST = "https://www.okx.com/api/v5/market/books"
START_MS = 1_796_119_250_000  # 2026-12-01T10:00:50Z
END_MS = 1_796_119_470_000  # 2026-12-01T10:04:30Z
INSTS = {
    # instId: (mid, tick, size decimals)
    "BTC-USDT": (Decimal("97000.0"), Decimal("0.1"), 8),
    "ETH-USDT-SWAP": (Decimal("3600.00"), Decimal("0.01"), 0),
    "SOL-USDT": (Decimal("230.00"), Decimal("0.01"), 6),
}
LEVELS = 50
#: book updates start 200 ms after START_MS, one a second per instrument (the others 37 and 74 ms later)
FIRST_MS = START_MS + 200
GAP_AT_MS = FIRST_MS + 90_000  # 10:02:20.2
BAD_CHECKSUM_AT_MS = FIRST_MS + 110_000  # 10:02:40.2 (+37 ms)
KEEPALIVE_AT_MS = FIRST_MS + 30_000  # 10:01:20.2
RESET_AT_MS = FIRST_MS + 50_000  # 10:01:40.2
OUT = Path(__file__).with_name("OKX.ws.seqid.gz")


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    parts: list[str] = []
    for i in range(max(len(bids[:25]), len(asks[:25]))):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


class Book:
    def __init__(self, inst: str, rng: random.Random) -> None:
        self.inst = inst
        self.rng = rng
        self.mid, self.tick, self.decimals = INSTS[inst]
        self.bids: dict[Decimal, str] = {}
        self.asks: dict[Decimal, str] = {}
        for k in range(1, LEVELS + 1):
            self.bids[self.mid - k * self.tick] = self.size()
            self.asks[self.mid + (k - 1) * self.tick + self.tick] = self.size()

    def size(self) -> str:
        if self.decimals == 0:
            return str(self.rng.randint(1, 400))
        units = self.rng.randint(1, 5 * 10**self.decimals)
        return str(Decimal(units).scaleb(-self.decimals))

    def fmt(self, px: Decimal) -> str:
        return str(px.quantize(self.tick))

    def levels(self, side: dict[Decimal, str], reverse: bool) -> list[list[str]]:
        return [[self.fmt(p), side[p], "0", str(1 + int(p * 10) % 7)] for p in sorted(side, reverse=reverse)]

    def sides(self) -> tuple[list[list[str]], list[list[str]]]:
        return self.levels(self.bids, True), self.levels(self.asks, False)

    def change(self, deep: bool = False) -> tuple[list[list[str]], list[list[str]]]:
        """A few levels changed near the top (or one 40 deep), as [px, sz, "0", orders] ("0" size: removed)."""
        bid_changes: list[list[str]] = []
        ask_changes: list[list[str]] = []
        picks = (
            [(40, self.rng.random() < 0.5)]
            if deep
            else [(self.rng.randint(1, 12), self.rng.random() < 0.5) for _ in range(self.rng.randint(1, 4))]
        )
        for k, is_bid in picks:
            side = self.bids if is_bid else self.asks
            px = self.mid - k * self.tick if is_bid else self.mid + k * self.tick
            if px in side and k > 1 and self.rng.random() < 0.2:
                del side[px]
                sz = "0"
            else:
                sz = side[px] = self.size()
            (bid_changes if is_bid else ask_changes).append([self.fmt(px), sz, "0", "0" if sz == "0" else "3"])
        return bid_changes, ask_changes

    def best(self) -> tuple[Decimal, Decimal]:
        return max(self.bids), min(self.asks)


def main() -> None:
    rng = random.Random(20261201)
    lines: list[tuple[int, str]] = []  # (recv ns, line)

    def recv(ts_ms: int) -> int:
        return ts_ms * 1_000_000 + rng.randint(3, 40) * 1_000_000 + rng.randint(0, 999_999)

    def received(recv_ns: int, payload: Any) -> None:
        text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        lines.append((recv_ns, f"{recv_ns // 10**9}.{recv_ns % 10**9:09d}: {text}"))

    def stamp(ns: int) -> str:
        return f"{ns // 10**9}.{ns % 10**9:09d}"

    t0 = (START_MS - 1_000) * 1_000_000
    head = [f"{URL} <-> {stamp(t0)}"]
    args = [{"channel": c, "instId": i} for c in ("trades", "books") for i in INSTS]
    head.append(f"{URL} <- {stamp(t0 + 300_000_000)}: {orjson.dumps({'op': 'subscribe', 'args': args}).decode()}")
    for n, arg in enumerate(args):
        received(t0 + 500_000_000 + n * 100_000, {"event": "subscribe", "arg": arg, "connId": "5e1c9a2b"})

    books = {inst: Book(inst, rng) for inst in INSTS}
    seqs = {"BTC-USDT": 11_200, "ETH-USDT-SWAP": 8_900_000, "SOL-USDT": 412_345}
    trade_ids = {"BTC-USDT": 700_000_100, "ETH-USDT-SWAP": 1_900_000_000, "SOL-USDT": 310_000_000}
    for inst, book in books.items():
        bids, asks = book.sides()
        ts = START_MS + {"BTC-USDT": 0, "ETH-USDT-SWAP": 40, "SOL-USDT": 80}[inst]
        item: dict[str, Any] = {"asks": asks, "bids": bids, "ts": str(ts)}
        if inst == "SOL-USDT":
            # no WS snapshot: the recorded REST reply the collector fetched
            rest = {"code": "0", "msg": "", "data": [{"asks": asks, "bids": bids, "ts": str(ts), "seqId": seqs[inst]}]}
            ns = recv(ts)
            lines.append((ns, f"{REST}?instId={inst}&sz=400 -> {stamp(ns)}: {orjson.dumps(rest).decode()}"))
            continue
        item.update(checksum=checksum(bids, asks), prevSeqId=-1, seqId=seqs[inst])
        received(recv(ts), {"arg": {"channel": "books", "instId": inst}, "action": "snapshot", "data": [item]})

    for ts in range(FIRST_MS, END_MS, 1_000):
        for n, (inst, book) in enumerate(books.items()):
            t = ts + 37 * n
            prev = seqs[inst]
            if inst == "BTC-USDT" and ts == KEEPALIVE_AT_MS:
                bid_ch: list[list[str]] = []
                ask_ch: list[list[str]] = []
                seq = prev  # the documented keep-alive: no change, prevSeqId == seqId
            else:
                deep = inst == "BTC-USDT" and ts == GAP_AT_MS
                bid_ch, ask_ch = book.change(deep=deep)
                seq = prev + rng.randint(1, 20)
                if inst == "BTC-USDT" and ts == RESET_AT_MS:
                    seq = 3  # the documented maintenance reset: seqId < prevSeqId, the chain goes on from it
            seqs[inst] = seq
            bids, asks = book.sides()
            crc = 0 if inst == "SOL-USDT" else checksum(bids, asks)
            if inst == "ETH-USDT-SWAP" and ts == BAD_CHECKSUM_AT_MS:
                crc += 1
            item = {"asks": ask_ch, "bids": bid_ch, "ts": str(t), "checksum": crc, "prevSeqId": prev, "seqId": seq}
            if inst == "BTC-USDT" and ts == GAP_AT_MS:
                continue  # left out of the recording: the seqId gap
            received(recv(t), {"arg": {"channel": "books", "instId": inst}, "action": "update", "data": [item]})
            if rng.random() < 0.45:
                best_bid, best_ask = book.best()
                side = "buy" if rng.random() < 0.5 else "sell"
                count = rng.choice((1, 1, 1, 2, 3))
                trade_ids[inst] += count
                px = best_ask if side == "buy" else best_bid
                trade = {
                    "instId": inst,
                    "tradeId": str(trade_ids[inst]),
                    "px": book.fmt(px),
                    "sz": book.size(),
                    "side": side,
                    "ts": str(t + 5),
                    "count": str(count),
                    "source": "0",
                    "seqId": trade_ids[inst] * 3,
                }
                received(recv(t + 5), {"arg": {"channel": "trades", "instId": inst}, "data": [trade]})
        if ts % 25_000 < 1_000:
            ns = recv(ts + 500)
            head_ping = f"{URL} <- {stamp(ns - 1_000_000)}: ping"
            lines.append((ns - 1_000_000, head_ping))
            received(ns, "pong")
    lines.sort(key=lambda x: x[0])
    text = "\n".join(head) + "\n" + "\n".join(line for _, line in lines) + "\n"
    with open(OUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:  # same bytes on every run
        fh.write(text.encode())
    print(f"wrote {OUT} ({len(lines) + len(head)} lines)", file=sys.stderr)


if __name__ == "__main__":
    main()
