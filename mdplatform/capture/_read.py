"""Reading recorded exchange traffic: hftbacktest ``.gz`` captures and cryptofeed sample files.

Both formats are line based and are read lazily, one line at a time, so a capture of any size streams through
in constant memory. The format is recognized from the first non-blank line of each file.

hftbacktest (Binance collector)::

    1723161253937085768 {"stream":"btcusdt@depth@100ms","data":{...}}     received WebSocket frame
    1723161254206652067 {"lastUpdateId":50093239218,"bids":[...],...}      REST depth snapshot reply

cryptofeed (``sample_data``)::

    wss://ws.okx.com:8443/ws/v5/public <-> 1652459224.5300605             connection opened
    wss://ws.okx.com:8443/ws/v5/public <- 1652459225.29: {"op":...}        frame sent by the client (skipped)
    1652459225.5037491: {"event":"subscribe",...}                          frame received
    https://api.binance.com/api/v3/depth?symbol=X&limit=1000 -> 1633998512.32: {...}   REST reply (*.http.*)
"""

from __future__ import annotations

import gzip
import heapq
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "BadLine",
    "CaptureFormat",
    "CapturedFrame",
    "ReadStats",
    "capture_format",
    "merge_captures",
    "open_capture",
    "read_capture",
]

log = logging.getLogger("mdplatform.capture")

CaptureFormat = Literal["hftbacktest", "cryptofeed"]
FrameKind = Literal["ws", "rest", "connect"]

_HFT_LINE = re.compile(r"^\d{10,20} [\[{]")
_CF_RECEIVED = re.compile(r"^(\d+(?:\.\d+)?): (.*)$", re.DOTALL)
_CF_URL_LINE = re.compile(r"^(\S+) (<->|<-|->) (\d+(?:\.\d+)?)(?:: (.*))?$", re.DOTALL)
_SNAPSHOT_PREFIX = '{"lastUpdateId"'
#: receive times are plausible from 2009-01-01 (no crypto market before) to a day ahead of this machine's clock
_FIRST_NS = 1_230_768_000 * 10**9
_DAY_NS = 86_400 * 10**9
_STREAM_PREFIX = '{"stream":"'
_EXCERPT = 120


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One received message of a recording.

    ``kind`` is "ws" for a WebSocket frame and "rest" for a REST reply (a depth snapshot). ``symbol`` is only
    set for REST replies: the instrument the reply is about (from the request URL, the body, or the stream
    recorded in the same file), because a Binance spot snapshot body does not name it. ``line`` is the
    1-based line number in the source file. With ``read_capture(..., connects=True)`` a cryptofeed connect line
    is a "connect" marker too (``frame``: the URL; a new connection starts there).
    """

    recv_ns: int
    frame: str
    kind: FrameKind
    symbol: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that could not be read; reported, never dropped silently."""

    path: str
    line: int
    reason: str
    text: str  # the first characters of the line


@dataclass(slots=True)
class ReadStats:
    """Counts of what a read saw; pass one to ``read_capture`` to collect them (and the bad lines)."""

    ws: int = 0
    rest: int = 0
    connects: int = 0
    sent: int = 0  # frames the recording client sent (subscribe requests): skipped
    blank: int = 0
    bad: list[BadLine] = field(default_factory=list)

    def merge(self, other: ReadStats) -> None:
        self.ws += other.ws
        self.rest += other.rest
        self.connects += other.connects
        self.sent += other.sent
        self.blank += other.blank
        self.bad.extend(other.bad)


def open_capture(path: str | Path) -> IO[str]:
    """A text stream over a capture, gunzipped when the file is gzip (by content, not by name). Bytes that are
    not UTF-8 become lone surrogates (``surrogateescape``) instead of stopping the read: the line they are in is
    reported as bad (``_not_utf8``) and the lines around it are read."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape", newline="\n")
    return open(path, encoding="utf-8", errors="surrogateescape", newline="\n")


def _not_utf8(line: str) -> bool:
    """Whether a line read through ``open_capture`` held bytes that are not UTF-8 (cheap for ASCII lines)."""
    if line.isascii():
        return False
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _implausible(recv_ns: int) -> str | None:
    """Why a receive time cannot be one (seconds or milliseconds taken for nanoseconds, a corrupt number)."""
    if _FIRST_NS <= recv_ns <= time.time_ns() + _DAY_NS:
        return None
    return f"receive time {recv_ns} is not nanoseconds between 2009-01-01 and tomorrow"


def capture_format(path: str | Path) -> CaptureFormat:
    """The format of a capture file, from its first non-blank line."""
    with open_capture(path) as fh:
        for line in fh:
            if line.strip():
                return _line_format(line.rstrip("\r\n"), path)
    raise ValueError(f"{path}: empty capture")


def _line_format(line: str, path: str | Path) -> CaptureFormat:
    if _HFT_LINE.match(line):
        return "hftbacktest"
    if _CF_RECEIVED.match(line) or _CF_URL_LINE.match(line):
        return "cryptofeed"
    raise ValueError(f"{path}: unrecognized capture format (first line: {line[:_EXCERPT]!r})")


def read_capture(
    path: str | Path, *, stats: ReadStats | None = None, connects: bool = False
) -> Iterator[CapturedFrame]:
    """The received frames of one capture file, in file order, lazily.

    Client-sent frames are skipped (counted in ``stats``); so are cryptofeed connect lines (counted), unless
    ``connects`` asks for them as ``kind="connect"`` markers (``import_capture`` splits connections there).
    Lines that cannot be parsed are collected in ``stats.bad`` with their line number; without ``stats`` they
    are logged as warnings.
    """
    fmt = capture_format(path)
    own_stats = stats if stats is not None else ReadStats()
    reported = len(own_stats.bad)
    try:
        if fmt == "hftbacktest":
            yield from _read_hftbacktest(str(path), own_stats)
        else:
            yield from _read_cryptofeed(str(path), own_stats, connects)
    finally:
        if stats is None:
            for bad in own_stats.bad[reported:]:
                log.warning("%s:%d: %s: %r", bad.path, bad.line, bad.reason, bad.text)


def merge_captures(paths: Iterable[str | Path], *, stats: ReadStats | None = None) -> Iterator[CapturedFrame]:
    """Frames of several captures merged by receive time (streaming; ties keep the order of ``paths``); no
    connect markers."""
    readers = [read_capture(p, stats=stats) for p in paths]
    return heapq.merge(*readers, key=_recv_key)


def _recv_key(frame: CapturedFrame) -> int:
    return frame.recv_ns


def _bad(stats: ReadStats, path: str, lineno: int, reason: str, line: str) -> None:
    # bytes that were not UTF-8 are shown as \xNN escapes: the excerpt must be printable and storable
    text = line[:_EXCERPT].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    stats.bad.append(BadLine(path, lineno, reason, text))


def _read_hftbacktest(path: str, stats: ReadStats) -> Iterator[CapturedFrame]:
    snapshot_symbol: Callable[[], str] = _lazy(lambda: _first_depth_symbol(path))
    with open_capture(path) as fh:
        for lineno, raw_line in enumerate(fh, 1):
            line = raw_line.rstrip("\r\n")
            if not line.strip():
                stats.blank += 1
                continue
            if _not_utf8(line):
                _bad(stats, path, lineno, "not UTF-8", line)
                continue
            ts, sep, frame = line.partition(" ")
            if not sep or not ts.isdigit() or not frame.startswith(("{", "[")):
                _bad(stats, path, lineno, "not '<recv ns> <json>'", line)
                continue
            problem = _implausible(int(ts))
            if problem is not None:
                _bad(stats, path, lineno, problem, line)
                continue
            if frame.startswith(_SNAPSHOT_PREFIX):
                symbol = _json_str_field(frame, "symbol") or snapshot_symbol()
                if not symbol:
                    _bad(stats, path, lineno, "depth snapshot without a symbol or depth stream", line)
                    continue
                stats.rest += 1
                yield CapturedFrame(int(ts), frame, "rest", symbol, lineno)
            else:
                stats.ws += 1
                yield CapturedFrame(int(ts), frame, "ws", "", lineno)


def _read_cryptofeed(path: str, stats: ReadStats, connects: bool) -> Iterator[CapturedFrame]:
    with open_capture(path) as fh:
        for lineno, raw_line in enumerate(fh, 1):
            line = raw_line.rstrip("\r\n")
            if not line.strip():
                stats.blank += 1
                continue
            if _not_utf8(line):
                _bad(stats, path, lineno, "not UTF-8", line)
                continue
            m = _CF_RECEIVED.match(line)
            if m is not None:
                recv = _seconds_to_ns(m.group(1))
                problem = _implausible(recv)
                if problem is not None:
                    _bad(stats, path, lineno, problem, line)
                    continue
                stats.ws += 1
                yield CapturedFrame(recv, m.group(2), "ws", "", lineno)
                continue
            u = _CF_URL_LINE.match(line)
            if u is None:
                _bad(stats, path, lineno, "not a cryptofeed capture line", line)
                continue
            url, arrow, ts, body = u.groups()
            if arrow == "<->":
                stats.connects += 1
                if connects:
                    yield CapturedFrame(_seconds_to_ns(ts), url, "connect", "", lineno)
            elif arrow == "<-":
                stats.sent += 1
            elif body is None:
                _bad(stats, path, lineno, "REST reply without a body", line)
            else:
                stats.rest += 1
                yield CapturedFrame(_seconds_to_ns(ts), body, "rest", _url_symbol(url), lineno)


def _seconds_to_ns(text: str) -> int:
    """'1652459225.5037491' -> ns, exactly (no float rounding)."""
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def _url_symbol(url: str) -> str:
    query = parse_qs(urlsplit(url).query)
    for key in ("symbol", "instId", "pair"):
        if key in query:
            return query[key][0]
    return ""


def _json_str_field(frame: str, key: str) -> str:
    """The value of a top-level-looking ``"key":"value"`` pair, by string search (no JSON parse)."""
    marker = f'"{key}":"'
    i = frame.find(marker)
    if i < 0:
        return ""
    start = i + len(marker)
    end = frame.find('"', start)
    return frame[start:end] if end > start else ""


def _first_depth_symbol(path: str) -> str:
    """The instrument of the first depth stream in a hftbacktest file ("btcusdt@depth@100ms" -> "BTCUSDT")."""
    with open_capture(path) as fh:
        for line in fh:
            _, _, frame = line.partition(" ")
            if frame.startswith(_STREAM_PREFIX):
                stream = frame[len(_STREAM_PREFIX) : frame.find('"', len(_STREAM_PREFIX))]
                name, _, channel = stream.partition("@")
                if channel.startswith("depth"):
                    return name.upper()
    return ""


def _lazy(fn: Callable[[], str]) -> Callable[[], str]:
    cache: list[str] = []

    def get() -> str:
        if not cache:
            cache.append(fn())
        return cache[0]

    return get
