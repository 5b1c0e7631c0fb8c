"""Build ``BITFINEX.ws.cs.gz`` from the real recording ``BITFINEX.ws.11.0.gz`` (deterministic; run from the repository
root: ``python tests/data/bitfinex/make_capture.py``). What is added is built from Bitfinex's documentation, not
recorded (see README.md):

- the client's ``conf`` asks for flags 65536 + 131072 (sequence numbers and book checksums);
- after every book frame a checksum frame ``[chanId,"cs",CHECKSUM,SEQ]`` ("WebSocket Checksum": signed CRC32 of
  ``price:amount`` over the top 25 bids and asks interleaved, amounts as sent, asks negative), computed here with
  plain dicts and ``zlib.crc32``; the 60th checksum of tIOTETH is made wrong (+1);
- six tTESTBTC:TESTUSD trades as "Trades" documents them: ``[chanId,"te",[ID,MTS,AMOUNT,PRICE],SEQ]`` then the same
  ID as ``"tu"`` (ids after the recorded snapshot's newest, times within the recording);
- two rounds of heartbeats ``[chanId,"hb",SEQ]`` of every channel, 15 s and 30 s after the last recorded frame
  ("General": a heartbeat every 15 s of a channel's silence), and a seventh trade (te + tu) at 16:40:04.5, so the
  exchange's clock passes 16:40:00 and the minute of the trades above is known closed;
- every sequence number is renumbered 1.. in order (they run without a break, as recorded).
"""

from __future__ import annotations

import gzip
import json
import zlib
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).parent
SOURCE = HERE / "BITFINEX.ws.11.0.gz"
TARGET = HERE / "BITFINEX.ws.cs.gz"
BAD_SYMBOL, BAD_INDEX = "tIOTETH", 60
TRADE_SYMBOL = "tTESTBTC:TESTUSD"
#: (seconds after the recording's first frame, amount, price): amount > 0 a buy, < 0 a sell
TRADES = [
    (9.5, "0.01", "60412"),
    (9.5, "-0.25", "60398"),
    (14.25, "0.0005", "60405"),
    (21.0, "-1.2", "60350"),
    (21.0, "-0.003", "60349.5"),
    (27.75, "0.42", "60420"),
]


def _crc(bids: dict[str, str], asks: dict[str, str]) -> int:
    top_b = sorted(bids, key=Decimal, reverse=True)[:25]
    top_a = sorted(asks, key=Decimal)[:25]
    parts: list[str] = []
    for i in range(max(len(top_b), len(top_a))):
        if i < len(top_b):
            parts += [top_b[i], bids[top_b[i]]]
        if i < len(top_a):
            parts += [top_a[i], asks[top_a[i]]]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


def _numbers(text: str) -> list[object]:
    return json.loads(text, parse_float=str, parse_int=str)  # type: ignore[no-any-return]


def main() -> None:
    lines = gzip.decompress(SOURCE.read_bytes()).decode().splitlines()
    chans: dict[str, tuple[str, str]] = {}
    books: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    out: list[str] = []
    seq = 0
    cs_count: dict[str, int] = {}
    first_ts: float | None = None
    pending = [(dt, a, p) for dt, a, p in TRADES]
    trade_id = 670_155_100
    trade_chan = ""

    def received(ts: str, frame: str) -> None:
        out.append(f"{ts}: {frame}")

    for line in lines:
        if " <- " in line and '"event":"conf"' in line:
            out.append(line.replace('"flags":65536', '"flags":196608'))
            continue
        if line.startswith("wss://"):
            out.append(line)
            continue
        ts, _, frame = line.partition(": ")
        if not frame.strip():
            continue
        if first_ts is None:
            first_ts = float(ts)
        while pending and trade_chan and float(ts) >= first_ts + pending[0][0]:
            dt, amount, price = pending.pop(0)
            trade_id += 7  # exchange-wide ids: other pairs' trades come in between
            mts = int((first_ts + dt) * 1000)
            for kind in ("te", "tu"):
                seq += 1
                received(ts, f'[{trade_chan},"{kind}",[{trade_id},{mts},{amount},{price}],{seq}]')
        if frame.startswith("{"):
            obj = json.loads(frame)
            if obj.get("event") == "subscribed":
                chans[str(obj["chanId"])] = (obj["channel"], obj["symbol"])
                if obj["channel"] == "trades" and obj["symbol"] == TRADE_SYMBOL:
                    trade_chan = str(obj["chanId"])
            received(ts, frame)
            continue
        msg = _numbers(frame)
        chan = str(msg[0])
        body = msg[:-1]  # the recorded sequence number is renumbered
        seq += 1
        received(ts, frame[: frame.rfind(",")] + f",{seq}]")
        channel, symbol = chans.get(chan, ("", ""))  # heartbeats may precede their channel's subscribed event
        if channel != "book" or body[1] == "hb":
            continue
        bids, asks = books.setdefault(symbol, ({}, {}))
        data = body[1]
        assert isinstance(data, list)
        levels = data if data and isinstance(data[0], list) else [data]
        if levels is data and data and isinstance(data[0], list):
            bids.clear()
            asks.clear()
        for price, count, amount in levels:
            side = asks if str(amount).startswith("-") else bids
            if count == "0":
                side.pop(price, None)
            else:
                side[price] = amount
        checksum = _crc(bids, asks)
        n = cs_count[symbol] = cs_count.get(symbol, 0) + 1
        if symbol == BAD_SYMBOL and n == BAD_INDEX:
            checksum += 1
        seq += 1
        received(ts, f'[{chan},"cs",{checksum},{seq}]')
    last = float(out[-1].partition(": ")[0])
    for after in (15.0, 30.0):
        for chan in chans:
            seq += 1
            received(f"{last + after:.6f}", f'[{chan},"hb",{seq}]')
    # one more trade after 16:40:00: the exchange's clock passes the minute of the trades above (it is known closed)
    trade_id += 7
    mts = int((last + 30.0) * 1000) - 20
    for kind in ("te", "tu"):
        seq += 1
        received(f"{last + 30.0:.6f}", f'[{trade_chan},"{kind}",[{trade_id},{mts},0.002,60421],{seq}]')
    TARGET.write_bytes(gzip.compress(("\n".join(out) + "\n").encode(), mtime=0))
    print(f"{TARGET.name}: {len(out)} lines, {seq} sequence numbers, checksums {sum(cs_count.values())}")


if __name__ == "__main__":
    main()
