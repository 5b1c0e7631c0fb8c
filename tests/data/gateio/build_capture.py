"""Build ``gateio_spot_gap.ws.gz`` from the real ``GATEIO.ws.1.0.gz`` (cryptofeed samples, MIT: LICENSE here).

The recording is copied line by line except one ``spot.order_book_update`` of OMG_USDT (U=59231896, u=59231896),
left out to force a U/u gap after the pair's book has synced; the real REST snapshots of ``GATEIO.http.0.0.gz`` are
merged in by receive time (one file replays on its own). Four ``spot.candlesticks`` pushes are appended, BUILT
(not recorded): the 12:13 minute's first push for OMG_USDT, NEO_BTC, DIS_USDT and ZKS_ETH at 12:13:01, flat at the
previous close with ``v`` "0", as Gate.io pushes a minute without trades (the recording's own pushes have that form;
"Spot WebSocket v4", Candlesticks channel): the recording ends at 12:12:43, and a frame after 12:13:00 closes the
12:12 minute for the candle builder. The e2e test drives the real ingestor over it (``tests/e2e/test_gateio_live.py``).
Run from the repository root: ``python tests/data/gateio/build_capture.py``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

HERE = Path(__file__).parent
DROP = '"s":"OMG_USDT","U":59231896,"u":59231896'
#: pair -> its last recorded price (the candle of a minute without trades is flat at it)
CLOSES = {"OMG_USDT": "7.915", "NEO_BTC": "0.0018678", "DIS_USDT": "121.58", "ZKS_ETH": "0.001021"}


def _recv_s(line: str) -> float:
    """A cryptofeed line's receive time (``<s>: frame``, ``<url> <-> <s>``, ``<url> -> <s>: body``)."""
    head = line.rstrip("\n").split(": ", 1)[0]
    return float(head.rsplit(" ", 1)[-1])


def main() -> None:
    dropped = 0
    out: list[str] = []
    with gzip.open(HERE / "GATEIO.ws.1.0.gz", "rt") as src:
        for line in src:
            if DROP in line:
                dropped += 1
                continue
            if line.strip():
                out.append(line if line.endswith("\n") else line + "\n")
    assert dropped == 1, dropped
    # the recorded REST snapshots, placed among the frames by their receive time: one file replays on its own
    with gzip.open(HERE / "GATEIO.http.0.0.gz", "rt") as src:
        rest = [line if line.endswith("\n") else line + "\n" for line in src if line.strip()]
    out = sorted(out + rest, key=_recv_s)
    for i, (pair, close) in enumerate(CLOSES.items()):
        push = (
            f'{{"time":1619093581,"channel":"spot.candlesticks","event":"update","result":{{"t":"1619093580",'
            f'"v":"0","c":"{close}","h":"{close}","l":"{close}","o":"{close}","n":"1m_{pair}"}}}}'
        )
        out.append(f"1619093581.{100000 + i}: {push}\n")
    # mtime 0: the same bytes on every run
    with open(HERE / "gateio_spot_gap.ws.gz", "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write("".join(out).encode())


if __name__ == "__main__":
    main()
