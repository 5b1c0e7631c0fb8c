"""Build the HTX captures the tests replay, from HTX's documentation (not recorded): deterministic.

``python tests/data/htx/make_capture.py`` writes, in cryptofeed's text format (connect line, sent requests, received
frames as Python bytes literals of the gzip-compressed JSON, as cryptofeed keeps HTX's binary frames):

- ``HTX.feed.mbp.gz``: spot ``market.$symbol.mbp.150`` on wss://api.huobi.pro/feed for btcusdt and ethusdt, laid out as
  "Market By Price (incremental update)" describes it (seqNum/prevSeqNum chain, seqNum steps of 1..20, empty diffs
  every 100 ms-style tick, sizes 0 remove a level, numbers as JSON numbers, one written with an exponent), each
  symbol's recorded ``req`` answer (``rep``, its seqNum the first update's) and the server's ``{"ping": t}`` every 5 s,
  over 2021-04-17 16:47:50-16:48:20 UTC (the time of the real ``HUOBI.ws.44.0.gz``, so both replay together). Forced
  fault: one btcusdt update left out (a seqNum gap).
- ``HTX_SWAP.ws.hf.gz``: USDT-margined swap BTC-USDT on wss://api.hbdm.com/linear-swap-ws: ``depth.size_150.high_freq``
  (``data_type`` incremental: a snapshot, then updates with ``version`` + 1) with one version left out, and
  ``trade.detail`` pushes as "[General] Subscribe Trade Detail Data" shows them (amount in contracts, quantity in
  coin, trade_turnover), pings every 5 s; 2022-02-19 16:50:00-16:51:30 UTC.
"""

from __future__ import annotations

import gzip
import json
import random
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).parent
FEED = "wss://api.huobi.pro/feed"
SWAP = "wss://api.hbdm.com/linear-swap-ws"
#: the mbp update left out (btcusdt), by its index
MBP_GAP_INDEX = 75
#: the high_freq update left out, by its index
HF_GAP_INDEX = 120


def _json(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))  # compact, as HTX writes


def _frame(text: str) -> str:
    return repr(gzip.compress(text.encode(), mtime=0))


def _levels(side: dict[Decimal, str], reverse: bool, n: int = 20) -> str:
    keys = sorted(side, reverse=reverse)[:n]
    return "[" + ",".join(f"[{k},{side[k]}]" for k in keys) + "]"


def _diff(changes: list[tuple[Decimal, str]]) -> str:
    return "[" + ",".join(f"[{p},{q}]" for p, q in changes) + "]"


def _size(rng: random.Random, exponent: bool = False) -> str:
    if exponent:
        return f"{rng.randint(11, 99) / 10}E-4"  # as HTX's Java writer prints small numbers
    return str(Decimal(rng.randint(1, 500_000)) / Decimal(10_000))


def _book(rng: random.Random, mid: Decimal, tick: Decimal) -> tuple[dict[Decimal, str], dict[Decimal, str]]:
    bids = {mid - tick * (i + 1): _size(rng) for i in range(20)}
    asks = {mid + tick * (i + 1): _size(rng) for i in range(20)}
    return bids, asks


def _mutate(
    rng: random.Random, bids: dict[Decimal, str], asks: dict[Decimal, str], mid: Decimal, tick: Decimal, exp: bool
) -> tuple[list[tuple[Decimal, str]], list[tuple[Decimal, str]]]:
    out: tuple[list[tuple[Decimal, str]], list[tuple[Decimal, str]]] = ([], [])
    if rng.random() < 0.15:
        return out  # nothing changed in the 100 ms: the 150-level feed still sends empty sides
    for side, sign, changes in ((bids, -1, out[0]), (asks, 1, out[1])):
        for _ in range(rng.randint(0, 3)):
            price = mid + sign * tick * rng.randint(1, 25)
            if price in side and rng.random() < 0.3:
                del side[price]
                changes.append((price, "0"))
            else:
                side[price] = _size(rng, exponent=exp and rng.random() < 0.05)
                changes.append((price, side[price]))
    return out


def build_mbp() -> list[str]:
    rng = random.Random(20210417)
    t0 = 1618678070.0
    lines = [f"{FEED} <-> {t0 - 0.2}"]
    symbols = {"btcusdt": (Decimal("61234.56"), Decimal("0.01")), "ethusdt": (Decimal("2412.5"), Decimal("0.05"))}
    for s in symbols:
        name = f"market.{s}.mbp.150"
        lines.append(f'{FEED} <- {t0 - 0.1}: {{"sub":"{name}","id":"{name}"}}')
    received: list[tuple[float, str]] = []
    for s in symbols:
        name = f"market.{s}.mbp.150"
        received.append((t0, _json({"id": name, "status": "ok", "subbed": name, "ts": int(t0 * 1000)})))
    for k, (s, (mid, tick)) in enumerate(symbols.items()):
        bids, asks = _book(rng, mid, tick)
        seq = 100_020_000_000 + 1_000_000 * k
        name = f"market.{s}.mbp.150"
        for i in range(150):  # every 200 ms for 30 s
            t = t0 + 0.05 + 0.2 * i + 0.01 * k
            prev, seq = seq, seq + rng.randint(1, 20)
            b, a = _mutate(rng, bids, asks, mid, tick, exp=s == "ethusdt")
            tick_text = f'{{"seqNum":{seq},"prevSeqNum":{prev},"bids":{_diff(b)},"asks":{_diff(a)}}}'
            frame = f'{{"ch":"{name}","ts":{int(t * 1000)},"tick":{tick_text}}}'
            if not (s == "btcusdt" and i == MBP_GAP_INDEX):
                received.append((t, frame))
            if i == 0:  # the recorder's req, answered once the first update was cached
                lines.append(f'{FEED} <- {t + 0.001}: {{"req":"{name}","id":"{name}"}}')
                rep = (
                    f'{{"id":"{name}","rep":"{name}","status":"ok","ts":{int(t * 1000) + 5},'
                    f'"data":{{"seqNum":{seq},"bids":{_levels(bids, True)},"asks":{_levels(asks, False)}}}}}'
                )
                received.append((t + 0.03, rep))
    for n in range(1, 7):
        received.append((t0 + 5 * n - 0.5, _json({"ping": int((t0 + 5 * n - 0.5) * 1000)})))
    received.sort(key=lambda r: r[0])
    lines += [f"{t:.6f}: {_frame(text)}" for t, text in received]
    return lines


def build_swap() -> list[str]:
    rng = random.Random(20220219)
    t0 = 1645289400.0
    contract, mid, tick = "BTC-USDT", Decimal("40123.4"), Decimal("0.1")
    hf, trades = f"market.{contract}.depth.size_150.high_freq", f"market.{contract}.trade.detail"
    lines = [f"{SWAP} <-> {t0 - 0.2}"]
    lines.append(f'{SWAP} <- {t0 - 0.1}: {{"sub":"{hf}","data_type":"incremental","id":"{hf}"}}')
    lines.append(f'{SWAP} <- {t0 - 0.1}: {{"sub":"{trades}","id":"{trades}"}}')
    received: list[tuple[float, str]] = [
        (t0, _json({"id": hf, "status": "ok", "subbed": hf, "data_type": "incremental", "ts": int(t0 * 1000)})),
        (t0, _json({"id": trades, "status": "ok", "subbed": trades, "ts": int(t0 * 1000)})),
    ]
    bids, asks = _book(rng, mid, tick)
    version, mrid = 1_512_467, 131_597_620
    for i in range(225):  # every 400 ms for 90 s
        t = t0 + 0.05 + 0.4 * i
        ms = int(t * 1000)
        if i == 0:
            b, a, event = _levels(bids, True), _levels(asks, False), "snapshot"
        else:
            changes = _mutate(rng, bids, asks, mid, tick, exp=False)
            b, a, event = _diff(changes[0]), _diff(changes[1]), "update"
            version += 1
        mrid += rng.randint(1, 50)
        body = (
            f'{{"ch":"{hf}","tick":{{"asks":{a},"bids":{b},"ch":"{hf}","event":"{event}","id":{mrid},'
            f'"mrid":{mrid},"ts":{ms},"version":{version}}},"ts":{ms + 1}}}'
        )
        if i != HF_GAP_INDEX:
            received.append((t, body))
        if i % 3 == 1:  # a trade push: 1..3 fills of one taker order (ids order id * 10000 + n)
            n = rng.randint(1, 3)
            side = rng.choice(("buy", "sell"))
            items = []
            for j in range(n):
                price = mid + (tick if side == "buy" else -tick) * rng.randint(1, 3)
                amount = rng.randint(1, 400)
                quantity = Decimal(amount) / 1000  # BTC-USDT face value 0.001 BTC
                items.append(
                    f'{{"amount":{amount},"quantity":{quantity},"trade_turnover":{quantity * price},"ts":{ms},'
                    f'"id":{mrid}{j:04d},"price":{price},"direction":"{side}"}}'
                )
            data = ",".join(items)
            received.append(
                (t + 0.01, f'{{"ch":"{trades}","ts":{ms + 2},"tick":{{"id":{mrid},"ts":{ms},"data":[{data}]}}}}')
            )
    for n in range(1, 19):
        received.append((t0 + 5 * n - 0.3, _json({"ping": int((t0 + 5 * n - 0.3) * 1000)})))
    received.sort(key=lambda r: r[0])
    lines += [f"{t:.6f}: {_frame(text)}" for t, text in received]
    return lines


def main() -> None:
    for name, lines in (("HTX.feed.mbp.gz", build_mbp()), ("HTX_SWAP.ws.hf.gz", build_swap())):
        with gzip.GzipFile(HERE / name, "wb", mtime=0) as fh:
            fh.write(("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()
