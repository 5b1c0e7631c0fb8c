"""Builds ``KUCOIN.gap.gz`` (the end-to-end test's capture) from the real recording beside it.

``KUCOIN.ws.1.0.gz`` + ``KUCOIN.http.0.0.gz`` (cryptofeed sample data, 2021-04-25, licence in ``LICENSE``) merged
line by line in receive-time order into one cryptofeed file (so one import sees the REST snapshots inside the
connection), with one ``/market/level2`` push of BCHSV-USDT left out: the 1,000th after its REST snapshot, a push
whose only change is a sequence-only one (price "0"), so the book is the same without it but its sequence jumps
(a forced gap). Run: ``python tests/data/kucoin/make_capture.py``.
"""

from __future__ import annotations

import gzip
import heapq
import re
from pathlib import Path

HERE = Path(__file__).parent
GAP_SYMBOL = "BCHSV-USDT"
GAP_AFTER_SNAPSHOT = 1000
_TIME = re.compile(r"^(?:\S+ (?:<->|<-|->) )?(\d+(?:\.\d+)?)")


def _time(line: str) -> float:
    m = _TIME.match(line)
    assert m is not None, line[:100]
    return float(m.group(1))


def _lines(name: str) -> list[str]:
    with gzip.open(HERE / name, "rt") as fh:
        return [line for line in fh.read().splitlines() if line.strip()]


def main() -> None:
    ws, http = _lines("KUCOIN.ws.1.0.gz"), _lines("KUCOIN.http.0.0.gz")
    lines = list(heapq.merge(ws, http, key=_time))  # each file keeps its own order
    out: list[str] = []
    seen_snapshot, after, dropped = False, 0, None
    for line in lines:
        if line.startswith("https://") and f"symbol={GAP_SYMBOL}" in line:
            seen_snapshot = True
        if seen_snapshot and f'"topic":"/market/level2:{GAP_SYMBOL}"' in line:
            after += 1
            only_sequence = re.findall(r'\["([^"]+)","[^"]*","\d+"\]', line) == ["0"]
            if dropped is None and after >= GAP_AFTER_SNAPSHOT and only_sequence:
                dropped = line
                continue
        out.append(line)
    assert dropped is not None
    with gzip.open(HERE / "KUCOIN.gap.gz", "wt") as fh:
        fh.write("\n".join(out) + "\n")
    print("left out:", dropped[:200])


if __name__ == "__main__":
    main()
