"""Which exchange (registry id) a capture file was recorded from."""

from __future__ import annotations

from pathlib import Path

from ..exchanges import EXCHANGES
from ._read import CaptureError, capture_format, head_lines

__all__ = ["check_exchange", "detect_exchange"]

_SCAN_LINES = 20_000


def _supported() -> str:
    return ", ".join(sorted(EXCHANGES))


def _by_host(url: str) -> str | None:
    """The exchange whose capture hint is the longest text found in ``url`` (a market's own path, like Bybit's
    ``stream.bybit.com/v5/public/linear``, beats its exchange's bare host)."""
    found = [(len(h), xid) for xid, x in EXCHANGES.items() for h in x.capture_hints.hosts if h in url]
    return max(found)[1] if found else None


def _by_feed(feed: str) -> str | None:
    """The exchange named by a cryptofeed file's feed (``BINANCE_FUTURES`` in ``BINANCE_FUTURES.ws.1.0.gz``)."""
    return next((xid for xid, x in EXCHANGES.items() if feed in x.capture_hints.feeds), None)


def detect_exchange(path: str | Path) -> str:
    """The registry id of the exchange a capture was recorded from ("binance", "binance-usdm", ...).

    hftbacktest files carry Binance combined streams: a ``pu`` field in depth diffs (or a futures-shaped
    trade/bookTicker) means futures, an instrument with an underscore (BTCUSD_PERP, BTCUSD_240927) COIN-M.
    cryptofeed files name their endpoint in connect and REST lines; a file without one is named after the feed.
    A ``CaptureError`` says why a file is none of these.
    """
    fmt = capture_format(path)
    if fmt == "hftbacktest":
        return _detect_hftbacktest(path)
    return _detect_cryptofeed(path)


def _detect_hftbacktest(path: str | Path) -> str:
    futures: bool | None = None
    symbol = ""
    for line in head_lines(path, _SCAN_LINES):
        _, _, frame = line.partition(" ")
        if not frame.startswith('{"stream":"'):
            continue
        if not symbol:
            start = frame.find('"s":"')
            if start >= 0:
                symbol = frame[start + 5 : frame.find('"', start + 5)]
        if '"e":"depthUpdate"' in frame:
            futures = '"pu":' in frame
        elif '"e":"bookTicker"' in frame or ('"e":"trade"' in frame and '"X":"' in frame):
            # spot bookTicker has no event type and spot trades carry "M" instead of "X"
            futures = True if futures is None else futures
        elif '"e":"trade"' in frame and futures is None:
            futures = False
        if '"e":"depthUpdate"' in frame and symbol:
            break
    if futures is None or not symbol:
        raise CaptureError(f"{path}: no Binance stream found in the first {_SCAN_LINES} lines")
    if not futures:
        return "binance"
    return "binance-coinm" if "_" in symbol else "binance-usdm"


def _detect_cryptofeed(path: str | Path) -> str:
    for line in head_lines(path, _SCAN_LINES):
        url = line.split(" ", 1)[0]
        if "://" in url:
            exchange = _by_host(url)
            if exchange is None:
                raise CaptureError(
                    f"{path}: recorded from {url.split('?')[0]}, not a supported exchange ({_supported()})"
                )
            return exchange
    exchange = _by_feed(Path(path).name.upper().split(".", 1)[0])
    if exchange is None:
        raise CaptureError(f"{path}: not a capture of a supported exchange ({_supported()})")
    return exchange


def check_exchange(path: str | Path, exchange_id: str | None) -> str:
    """The exchange of a capture, detected; ``exchange_id``, when given, must be it (a capture imported under
    another exchange would land its frames unreadable, as that exchange's control messages)."""
    detected = detect_exchange(path)
    if exchange_id is not None and exchange_id != detected:
        raise CaptureError(f"{path} is a {detected} capture (by its content), not {exchange_id}")
    return detected
