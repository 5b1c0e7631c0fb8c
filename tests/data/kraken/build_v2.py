"""Builds ``KRAKEN_V2.ws.1.0.gz``: Kraken WebSocket v2 messages made from the real v1 recordings of cryptofeed's
samples (KRAKEN.ws.48.0 trades, 49.0 ticker, 50.0 book-1000; 2021-04-17, 10 pairs, one session of 30 s), in
the shapes of docs.kraken.com api-reference/spot-websocket-v2 (trade, book, ticker, heartbeat, status, subscribe).

What is the recording's and what is built:
- every book price and qty keeps the recorded digits, written as JSON numbers (v2 sends numbers with the pair's
  full precision); update checksums are the recorded v1 ``c`` (v1 and v2 share the algorithm over the same
  texts); snapshot checksums (v1 sends none, v2 does) are computed with ``kraken_checksum``;
- trades keep price, volume, time and taker side; v1 has no trade ids, so ids are numbered per pair from 1,000,001
  in recorded order (contiguous, as v2's are); ``ord_type`` from v1's m/l;
- ticker fields from v1's arrays (24 h values); ``change`` = last - 24 h open;
- ``XBT`` becomes ``BTC`` (v2 names); times become RFC 3339 (microseconds); the three v1 connections become one
  v2 connection (its subscribe requests and per-pair acks at the recorded times); heartbeats and the status come
  from the book connection.
The v1 recordings are copied beside this script (with cryptofeed's LICENSE); run from the repository:
``.venv/bin/python tests/data/kraken/build_v2.py``.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("KRAKEN.ws.48.0.gz", "KRAKEN.ws.49.0.gz", "KRAKEN.ws.50.0.gz")
OUT = HERE / "KRAKEN_V2.ws.1.0.gz"
V2_URL = "wss://ws.kraken.com/v2"
FIRST_TRADE_ID = 1_000_001
DEPTH = 1000


def v2_symbol(pair: str) -> str:
    return "/".join({"XBT": "BTC", "XDG": "DOGE"}.get(a, a) for a in pair.split("/"))


def seconds_ns(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def read_lines(path: Path) -> Iterator[tuple[str, str, str]]:
    """(kind, time text, text): kind "connect" (text: url), "sent", "recv"."""
    with gzip.open(path, "rt") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if " <-> " in line:
                url, _, ts = line.partition(" <-> ")
                yield "connect", ts, url
            elif " <- " in line:
                _, _, rest = line.partition(" <- ")
                ts, _, text = rest.partition(": ")
                yield "sent", ts, text
            else:
                ts, _, text = line.partition(": ")
                yield "recv", ts, text


def _levels(levels: list[list[str]]) -> str:
    return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q, *_ in levels) + "]"


def build(source: Path = HERE) -> list[str]:
    """The built capture's lines from the v1 recordings in ``source``."""
    sys.path.insert(0, str(HERE.parents[2]))
    from mdplatform.contract import Subscription
    from mdplatform.exchanges.kraken import KrakenBookBuilder, KrakenExchange, rfc3339

    def iso(ts: str) -> str:
        return rfc3339(seconds_ns(ts) // 1000 * 1000)  # Kraken writes microseconds

    exchange = KrakenExchange(book_depth=DEPTH)
    out: list[tuple[int, int, str]] = []  # (ns, order, line)
    order = 0

    def emit(ts: str, line: str) -> None:
        nonlocal order
        order += 1
        out.append((seconds_ns(ts), order, line))

    books: dict[str, KrakenBookBuilder] = {}
    trade_ids: dict[str, int] = {}
    tickers: set[str] = set()
    req = {"trade": 1, "book": 2, "ticker": 3}
    for name in SOURCES:
        for kind, ts, text in read_lines(source / name):
            if kind == "connect":
                if name.endswith("50.0.gz"):
                    emit(ts, f"{V2_URL} <-> {ts}")
                continue
            if kind == "sent":
                msg = json.loads(text)
                channel = msg["subscription"]["name"]
                subs = [Subscription(channel, v2_symbol(p)) for p in msg["pair"]]
                for request in exchange.subscribe_messages(subs):
                    emit(ts, f"{V2_URL} <- {ts}: {request}")
                continue
            msg = json.loads(text)
            if isinstance(msg, dict):
                event = msg.get("event")
                if event == "heartbeat" and name.endswith("50.0.gz"):
                    emit(ts, f'{ts}: {{"channel":"heartbeat"}}')
                elif event == "systemStatus" and name.endswith("50.0.gz"):
                    status = {
                        "channel": "status",
                        "type": "update",
                        "data": [
                            {
                                "api_version": "v2",
                                "connection_id": msg["connectionID"],
                                "system": msg["status"],
                                "version": "2.0.0",
                            }
                        ],
                    }
                    emit(ts, f"{ts}: {json.dumps(status, separators=(',', ':'))}")
                elif event == "subscriptionStatus":
                    channel = msg["subscription"]["name"]
                    result: dict[str, object] = {"channel": channel}
                    if channel == "book":
                        result["depth"] = DEPTH
                    result["snapshot"] = True
                    result["symbol"] = v2_symbol(msg["pair"])
                    ack = {
                        "method": "subscribe",
                        "req_id": req[channel],
                        "result": result,
                        "success": msg["status"] == "subscribed",
                        "time_in": iso(ts),
                        "time_out": iso(ts),
                    }
                    emit(ts, f"{ts}: {json.dumps(ack, separators=(',', ':'))}")
                continue
            channel_name, pair = msg[-2], v2_symbol(msg[-1])
            if channel_name == "trade":
                items = []
                for price, volume, t, side, kind_, _misc in msg[1]:
                    tid = trade_ids.get(pair, FIRST_TRADE_ID)
                    trade_ids[pair] = tid + 1
                    items.append(
                        f'{{"symbol":"{pair}","side":"{"buy" if side == "b" else "sell"}","price":{price},'
                        f'"qty":{volume},"ord_type":"{"market" if kind_ == "m" else "limit"}","trade_id":{tid},'
                        f'"timestamp":"{iso(t)}"}}'
                    )
                emit(ts, f'{ts}: {{"channel":"trade","type":"update","data":[{",".join(items)}]}}')
            elif channel_name == "ticker":
                d = msg[1]
                last, open_ = Decimal(d["c"][0]), Decimal(d["o"][1])
                change = last - open_
                pct = (change / open_ * 100).quantize(Decimal("0.01"))
                kind_ = "update" if pair in tickers else "snapshot"
                tickers.add(pair)
                emit(
                    ts,
                    f'{ts}: {{"channel":"ticker","type":"{kind_}","data":[{{"symbol":"{pair}",'
                    f'"bid":{d["b"][0]},"bid_qty":{d["b"][2]},"ask":{d["a"][0]},"ask_qty":{d["a"][2]},'
                    f'"last":{d["c"][0]},"volume":{d["v"][1]},"vwap":{d["p"][1]},"low":{d["l"][1]},'
                    f'"high":{d["h"][1]},"change":{change},"change_pct":{pct}}}]}}',
                )
            elif channel_name.startswith("book-"):
                emit(ts, f"{ts}: {book_message(msg, pair, books, iso)}")
    out.sort()
    return [line for _, _, line in out]


def book_message(msg: list[object], pair: str, books: dict[str, object], iso: object) -> str:
    """One v1 book frame as a v2 ``book`` message (the builder keeps the book to checksum built snapshots)."""
    from mdplatform.exchanges.kraken import KrakenBookBuilder, exact_loads

    parts = [p for p in msg[1:-2] if isinstance(p, dict)]
    builder = books.get(pair)
    if any("as" in p or "bs" in p for p in parts):
        snap = {k: v for p in parts for k, v in p.items()}
        asks, bids = snap.get("as", []), snap.get("bs", [])
        times = [lv[2] for lv in asks + bids]
        b = books[pair] = KrakenBookBuilder(pair, DEPTH)
        body = f'{{"symbol":"{pair}","bids":{_levels(bids)},"asks":{_levels(asks)}'
        b.on_raw("book", f'{{"channel":"book","type":"snapshot","data":[{body}}}]}}')
        body += f',"checksum":{b.checksum()},"timestamp":"{iso(max(times, key=float))}"}}'  # type: ignore[operator]
        return f'{{"channel":"book","type":"snapshot","data":[{body}]}}'
    asks = [lv for p in parts for lv in p.get("a", [])]
    bids = [lv for p in parts for lv in p.get("b", [])]
    checksum = next(int(p["c"]) for p in parts if "c" in p)
    times = [lv[2] for lv in asks + bids]
    body = (
        f'{{"symbol":"{pair}","bids":{_levels(bids)},"asks":{_levels(asks)},"checksum":{checksum},'
        f'"timestamp":"{iso(max(times, key=float))}"}}'  # type: ignore[operator]
    )
    text = f'{{"channel":"book","type":"update","data":[{body}]}}'
    assert isinstance(builder, KrakenBookBuilder)
    d = exact_loads(text)["data"][0]
    assert builder.apply_item("update", d) is None, (pair, checksum)
    return text


def main() -> None:
    lines = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
    with gzip.open(OUT, "wt") as f:
        f.writelines(line + "\n" for line in lines)
    print(f"{OUT}: {len(lines)} lines")


if __name__ == "__main__":
    main()
