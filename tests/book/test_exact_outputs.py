"""The compiled book gives exactly what the pure-Python book it replaced gave, on the real recordings: every
sample value, heatmap row, invalid interval and checkpoint, and the book after every valid row (best levels, depth,
and a full checkpoint every so many rows), in the set-ups of ``_exact`` (the assets', the receive clock with fine
buckets and a short silence limit, two windows through a checkpoint, a forced gap under a coverage gap; OKX's three
books with their checksums).

``RECORDED`` are the digests ``_exact`` computed with the implementation before it (commit 58c6794: ``L2Book`` as
Python dicts and sorted key lists, numpy metrics and buckets); a mismatch means some value changed, and
``_exact.frame_digest`` of the two frames points at it when they are compared column by column."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest
from _book_util import RECORDINGS
from _exact import binance_digests, okx_digests

RECORDED: dict[str, dict[str, str]] = {
    "spot/btcusdt": {
        "assets samples": "297895fc8b3b6576",
        "assets invalid": "1eef277741239b2f",
        "assets heatmap": "ae17cfed900f3274",
        "assets checkpoint": "9a30bf899fb2d111",
        "receive samples": "c542deb2dbaaf20f",
        "receive invalid": "726be3b7a1a3fbd0",
        "receive heatmap": "921178b5ac714ca2",
        "receive checkpoint": "0a822ad1fbe3bc47",
        "first window samples": "91d9116505894f7b",
        "first window invalid": "1eef277741239b2f",
        "first window heatmap": "a8120c2cea1c8c2d",
        "first window checkpoint": "e9c89c3a6eabf626",
        "second window samples": "a8895cfec6d706cd",
        "second window invalid": "17534c9b4d118b3d",
        "second window heatmap": "fd4c092b30b40412",
        "second window checkpoint": "9a30bf899fb2d111",
        "gap samples": "2b80e2a382868e64",
        "gap invalid": "cf27f426c9968390",
        "gap heatmap": "ebc37faed1251f53",
        "gap checkpoint": "62bb7a764fc2ed2e",
        "states": "3808bfd3d64505f8",
    },
    "usdm/btcusdt": {
        "assets samples": "31e36bfd3935a807",
        "assets invalid": "b053eaa2b1eefc3b",
        "assets heatmap": "6576255c6edc016e",
        "assets checkpoint": "2cc9efb13c52f9fe",
        "receive samples": "79789f104cb53ee4",
        "receive invalid": "ad3b1d4f2952f312",
        "receive heatmap": "48e438b3c9315777",
        "receive checkpoint": "6e1d1c36be75d7fe",
        "first window samples": "f4de2ab7d7acada7",
        "first window invalid": "b053eaa2b1eefc3b",
        "first window heatmap": "c2f088820b58b2b2",
        "first window checkpoint": "d98cd47e095b7e94",
        "second window samples": "6bec1c21713e9445",
        "second window invalid": "17534c9b4d118b3d",
        "second window heatmap": "3d76067a4c7b0220",
        "second window checkpoint": "2cc9efb13c52f9fe",
        "gap samples": "bd8a75d6cf8745eb",
        "gap invalid": "0cefec3ce6e9de13",
        "gap heatmap": "2cc015a9bb44b5d7",
        "gap checkpoint": "1adb24891b50ffd0",
        "states": "f81cfcce2982d031",
    },
    "cm/btcusd_perp": {
        "assets samples": "863381d2fa5a8b51",
        "assets invalid": "fc7ac23daa46c40d",
        "assets heatmap": "be47501927694a10",
        "assets checkpoint": "59c284259df956b7",
        "receive samples": "7a5ab195f6dcf6c6",
        "receive invalid": "f3b1ab13f8a83536",
        "receive heatmap": "a5869d21787dda79",
        "receive checkpoint": "0809925bb00d753a",
        "first window samples": "d70c735ac22b4c90",
        "first window invalid": "fc7ac23daa46c40d",
        "first window heatmap": "e30491d16057504a",
        "first window checkpoint": "ac1c57a66b212baf",
        "second window samples": "282e47797ef08a7b",
        "second window invalid": "17534c9b4d118b3d",
        "second window heatmap": "abe678372dfde208",
        "second window checkpoint": "59c284259df956b7",
        "gap samples": "1804ff3d1c95c33b",
        "gap invalid": "92daa1b21ddce23e",
        "gap heatmap": "17804262b0eecb83",
        "gap checkpoint": "21b05381266d74ef",
        "states": "b8368435f98825d6",
    },
    "OKX.ws.1.0.gz": {
        "BTC-USDT samples": "4cf92887d2606b0d",
        "BTC-USDT invalid": "17534c9b4d118b3d",
        "BTC-USDT heatmap": "f6d167b103de0673",
        "BTC-USDT checkpoint": "6cd064097858bbef",
        "BTC-USDT states": "2d529961ce224666",
        "BTC-USD-220527 samples": "eaeb029bb6c82b33",
        "BTC-USD-220527 invalid": "17534c9b4d118b3d",
        "BTC-USD-220527 heatmap": "dc4563ce81d8944c",
        "BTC-USD-220527 checkpoint": "3641d70e713020ee",
        "BTC-USD-220527 states": "8bb517f4dd41344c",
        "UNI-USD-SWAP samples": "94e36dbb992ae4f3",
        "UNI-USD-SWAP invalid": "17534c9b4d118b3d",
        "UNI-USD-SWAP heatmap": "23317e447c3ff910",
        "UNI-USD-SWAP checkpoint": "effe1e96b5507c54",
        "UNI-USD-SWAP states": "6e4c012db7d96000",
    },
}


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_binance_outputs_equal_the_python_book_s(recording: Callable[[str], pl.DataFrame], name: str) -> None:
    xid, symbol, _ = RECORDINGS[name]
    assert binance_digests(recording(name), xid, symbol) == RECORDED[name]


def test_okx_outputs_equal_the_python_book_s(recording: Callable[[str], pl.DataFrame]) -> None:
    assert okx_digests(recording("OKX.ws.1.0.gz")) == RECORDED["OKX.ws.1.0.gz"]
