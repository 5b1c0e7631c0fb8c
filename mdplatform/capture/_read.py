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
import io
import itertools
import logging
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np
import polars as pl
import pyarrow as pa

from .._errors import UserError
from ..contract import CapturedFrame, FrameKind

__all__ = [
    "CONNECT",
    "REST",
    "WS",
    "BadLine",
    "CaptureError",
    "CaptureFormat",
    "CapturedFrame",
    "DamagedCapture",
    "FrameChunk",
    "ReadStats",
    "capture_format",
    "head_lines",
    "merge_captures",
    "open_capture",
    "read_capture",
    "read_chunks",
]

log = logging.getLogger("mdplatform.capture")

CaptureFormat = Literal["hftbacktest", "cryptofeed"]

_HFT_LINE = re.compile(r"^\d{10,20} [\[{]")
_CF_RECEIVED = re.compile(r"^(\d+(?:\.\d+)?): (.*)$", re.DOTALL)
_CF_URL_LINE = re.compile(r"^(\S+) (<->|<-|->) (\d+(?:\.\d+)?)(?:: (.*))?$", re.DOTALL)
_SNAPSHOT_PREFIX = '{"lastUpdateId"'
#: receive times are plausible from 2009-01-01 (no crypto market before) to a day ahead of this machine's clock
_FIRST_NS = 1_230_768_000 * 10**9
_DAY_NS = 86_400 * 10**9
_STREAM_PREFIX = '{"stream":"'
_EXCERPT = 120
#: decompressed bytes of a hftbacktest file read at once (about 15,000 lines of Binance depth + trades)
_BLOCK_BYTES = 4 << 20
#: lines per chunk of a cryptofeed file
_CHUNK_LINES = 65_536
#: ``FrameChunk.kinds`` codes, and the ``CapturedFrame.kind`` of each
WS, REST, CONNECT = 0, 1, 2
_KINDS: tuple[FrameKind, ...] = ("ws", "rest", "connect")
#: a combined-stream frame's stream name: the envelope hftbacktest's Binance collector records
_STREAM_NAME = r'^\{"stream":"([^"]*)"'
#: bytes the block reader looks for, and the longest receive time it reads (19 digits fit an int64)
_NEWLINE, _SPACE, _CR, _BRACE, _BRACKET, _ZERO = (ord(c) for c in "\n \r{[0")
_TS_DIGITS = 19
_POWERS = 10 ** np.arange(_TS_DIGITS - 1, -1, -1, dtype=np.uint64)


class CaptureError(UserError, ValueError):
    """A file that is not a capture this package reads (its format, its exchange); the message names the file."""


class DamagedCapture(CaptureError):
    """A gzip capture whose compressed data ends early (a recording cut short) or is corrupt: every whole line
    before the damage was read, ``lines`` of them; nothing after it can be."""

    def __init__(self, path: str | Path, lines: int, exc: BaseException) -> None:
        self.path, self.lines = str(path), lines
        self.reason = "is truncated (its gzip data ends early)" if isinstance(exc, EOFError) else f"is corrupt ({exc})"
        super().__init__(f"{path} {self.reason} after line {lines}")


#: what reading a damaged gzip file raises: the stream ends before its end marker, a bad header or bad data
_DAMAGE = (EOFError, gzip.BadGzipFile, zlib.error)


@dataclass(frozen=True, slots=True)
class FrameChunk:
    """Consecutive received messages of one capture file as columns (``read_chunks``): what ``read_capture``
    yields one ``CapturedFrame`` at a time. ``kinds`` holds ``WS``, ``REST`` or ``CONNECT``; ``symbols`` is set for
    REST replies only; ``streams`` is the combined-stream name of each frame where the format says it (hftbacktest),
    null elsewhere. A chunk never spans a connect marker: a ``CONNECT`` row is a chunk of its own."""

    recv_ns: np.ndarray
    frames: pl.Series
    kinds: np.ndarray
    symbols: pl.Series
    lines: np.ndarray
    streams: pl.Series

    def __len__(self) -> int:
        return len(self.recv_ns)

    def captured(self) -> Iterator[CapturedFrame]:
        for recv, frame, kind, symbol, line in zip(
            self.recv_ns.tolist(), self.frames, self.kinds.tolist(), self.symbols, self.lines.tolist(), strict=True
        ):
            yield CapturedFrame(recv, frame, _KINDS[kind], symbol, line)

    @classmethod
    def of(cls, frames: list[CapturedFrame]) -> FrameChunk:
        return cls(
            np.array([f.recv_ns for f in frames], np.int64),
            pl.Series([f.frame for f in frames], dtype=pl.String),
            np.array([_KINDS.index(f.kind) for f in frames], np.uint8),
            pl.Series([f.symbol for f in frames], dtype=pl.String),
            np.array([f.line for f in frames], np.int64),
            pl.Series([None] * len(frames), dtype=pl.String),
        )


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


def head_lines(path: str | Path, most: int | None = None) -> Iterator[str]:
    """The first ``most`` lines of a capture (all: None; newline kept), ending quietly where a damaged gzip file
    does: for the looks at a file's start (its format, its exchange); reading the file reports the damage."""
    with open_capture(path) as fh:
        try:
            yield from itertools.islice(fh, most)
        except _DAMAGE:
            return


def capture_format(path: str | Path) -> CaptureFormat:
    """The format of a capture file, from its first non-blank line."""
    with open_capture(path) as fh:
        for _, line in _numbered(str(path), fh):
            if line.strip():
                return _line_format(line.rstrip("\r\n"), path)
    raise CaptureError(f"{path}: empty capture")


def _line_format(line: str, path: str | Path) -> CaptureFormat:
    if _HFT_LINE.match(line):
        return "hftbacktest"
    if _CF_RECEIVED.match(line) or _CF_URL_LINE.match(line):
        return "cryptofeed"
    raise CaptureError(
        f"{path}: unrecognized capture format: known are hftbacktest ('<receive ns> <json>' lines, gzip or plain) and "
        f"cryptofeed sample files ('<url> <-> <ts>', '<ts>: <frame>' lines); its first line is {line[:60]!r}"
    )


def read_capture(
    path: str | Path, *, stats: ReadStats | None = None, connects: bool = False
) -> Iterator[CapturedFrame]:
    """The received frames of one capture file, in file order, lazily.

    Client-sent frames are skipped (counted in ``stats``); so are cryptofeed connect lines (counted), unless
    ``connects`` asks for them as ``kind="connect"`` markers (``import_capture`` splits connections there).
    Lines that cannot be parsed are collected in ``stats.bad`` with their line number; without ``stats`` they
    are logged as warnings.
    """
    for chunk in read_chunks(path, stats=stats, connects=connects):
        yield from chunk.captured()


def read_chunks(path: str | Path, *, stats: ReadStats | None = None, connects: bool = False) -> Iterator[FrameChunk]:
    """``read_capture`` by chunks of consecutive frames (``FrameChunk``), for readers that work on columns: a
    hftbacktest file is split into lines and fields by vectorized code, block by block."""
    fmt = capture_format(path)
    own_stats = stats if stats is not None else ReadStats()
    reported = len(own_stats.bad)
    try:
        if fmt == "hftbacktest":
            yield from _read_hftbacktest(str(path), own_stats)
        else:
            yield from _chunked(_read_cryptofeed(str(path), own_stats, connects))
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


def _chunked(frames: Iterator[CapturedFrame]) -> Iterator[FrameChunk]:
    """Frames in chunks of at most ``_CHUNK_LINES``, each connect marker a chunk of its own."""
    batch: list[CapturedFrame] = []
    try:
        for f in frames:
            if f.kind == "connect":
                if batch:
                    yield FrameChunk.of(batch)
                    batch = []
                yield FrameChunk.of([f])
                continue
            batch.append(f)
            if len(batch) >= _CHUNK_LINES:
                yield FrameChunk.of(batch)
                batch = []
    except DamagedCapture:
        if batch:  # the frames before the damage, then the damage
            yield FrameChunk.of(batch)
        raise
    if batch:
        yield FrameChunk.of(batch)


def _open_binary(path: str) -> io.BufferedIOBase:
    """The capture's bytes, gunzipped when the file is gzip (by content, not by name)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(path, "rb")
    return open(path, "rb")


def _read_hftbacktest(path: str, stats: ReadStats) -> Iterator[FrameChunk]:
    """Blocks of whole lines, each split into fields by vectorized code. A block with a line that is not a plain
    '<recv ns> <json>' (blank, bad, not UTF-8, a snapshot without a symbol) is read line by line instead
    (``_hftbacktest_line``: what decides, and reports, every line that is not plain)."""
    snapshot_symbol: Callable[[], str] = _lazy(lambda: _first_depth_symbol(path))
    first_line = 1
    rest = b""
    with _open_binary(path) as fh:
        while True:
            block, damage = _read_block(fh)
            data = rest + block
            if damage is not None:
                data, rest = data[: data.rfind(b"\n") + 1], b""  # the line the damage cut short is not read
            elif not data:
                return
            elif block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data  # a line longer than a block: read on
                    continue
                data, rest = data[:cut], data[cut:]
            else:
                data, rest = data + b"\n", b""  # the last line has no newline
            if data:
                chunk, lines = _hftbacktest_block(data, first_line, path, stats, snapshot_symbol)
                first_line += lines
                if chunk is not None and len(chunk):
                    yield chunk
            if damage is not None:
                raise DamagedCapture(path, first_line - 1, damage)


def _read_block(fh: io.BufferedIOBase) -> tuple[bytes, BaseException | None]:
    """About ``_BLOCK_BYTES`` of the file, and what damage ended it early. Piece by piece (``read1``): a plain
    ``read`` of a gzip file that ends early raises and drops what it had decompressed."""
    pieces: list[bytes] = []
    size = 0
    try:
        while size < _BLOCK_BYTES:
            piece = fh.read1(_BLOCK_BYTES - size)
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
    except _DAMAGE as exc:
        return b"".join(pieces), exc
    return b"".join(pieces), None


def _hftbacktest_block(
    data: bytes, first_line: int, path: str, stats: ReadStats, snapshot_symbol: Callable[[], str]
) -> tuple[FrameChunk | None, int]:
    """(the frames of a block of whole lines, the number of lines in it). Lines are found, and split into receive
    time and frame, by array operations on the bytes; each frame is a view into the block (no copy)."""
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == _NEWLINE)
    n = len(ends)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    offsets[1:] = ends + 1
    starts = offsets[:-1]
    spaces = np.flatnonzero(buf == _SPACE)
    k = np.searchsorted(spaces, starts)
    space = spaces[np.minimum(k, len(spaces) - 1)] if len(spaces) else starts
    fstart = space + 1
    last = len(buf) - 1
    # plain: '<1 to 19 digits> <{ or [>...' without a carriage return at its end (and, below, UTF-8 and a plausible
    # time); any other line makes the block go line by line
    plain = (k < len(spaces)) & (space > starts) & (space - starts <= _TS_DIGITS) & (ends > fstart)
    head = buf[np.minimum(fstart, last)]
    plain &= ((head == _BRACE) | (head == _BRACKET)) & (buf[ends - 1] != _CR)
    where = space[:, None] - _TS_DIGITS + np.arange(_TS_DIGITS)
    inside = where >= starts[:, None]
    digits = buf[np.maximum(where, 0)] - np.uint8(_ZERO)
    plain &= ((digits <= 9) | ~inside).all(axis=1)
    recv = np.where(inside, digits, 0).astype(np.uint64) @ _POWERS
    plain &= (recv >= _FIRST_NS) & (recv <= time.time_ns() + _DAY_NS)
    if not plain.all():
        return _hftbacktest_slow(data, offsets, first_line, path, stats, snapshot_symbol), n
    views = _views(buf, data, fstart, ends)
    try:
        views.validate(full=True)  # UTF-8
    except pa.ArrowInvalid:
        return _hftbacktest_slow(data, offsets, first_line, path, stats, snapshot_symbol), n
    frames = pl.Series(views)
    kinds = frames.str.starts_with(_SNAPSHOT_PREFIX).cast(pl.UInt8).to_numpy()
    symbols = pl.Series([""] * n, dtype=pl.String)
    snapshots = np.flatnonzero(kinds).tolist()
    if snapshots:
        found = [_json_str_field(frames[i], "symbol") or snapshot_symbol() for i in snapshots]
        if not all(found):  # reported by the line-by-line reader
            return _hftbacktest_slow(data, offsets, first_line, path, stats, snapshot_symbol), n
        symbols = symbols.scatter(snapshots, found)
    stats.ws += n - len(snapshots)
    stats.rest += len(snapshots)
    chunk = FrameChunk(
        recv.astype(np.int64),
        frames,
        kinds,
        symbols,
        np.arange(first_line, first_line + n, dtype=np.int64),
        frames.str.extract(_STREAM_NAME, 1),
    )
    return chunk, n


def _views(buf: np.ndarray, data: bytes, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """The strings ``data[starts[i]:ends[i]]`` as an Arrow string view array over ``data`` itself: per string its
    length and either its bytes (up to 12) or its first 4 bytes and its offset."""
    n = len(starts)
    lengths = (ends - starts).astype(np.int32)
    views = np.zeros((n, 4), np.int32)
    views[:, 0] = lengths
    inline = buf[np.minimum(starts[:, None] + np.arange(12), len(buf) - 1)]
    views.view(np.uint8)[:, 4:] = np.where(np.arange(12) < lengths[:, None], inline, 0)
    long = lengths > 12
    views[long, 2] = 0  # buffer 0 (the prefix stays in bytes 4..8)
    views[long, 3] = starts[long]
    return pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views), pa.py_buffer(data)])


def _hftbacktest_slow(
    data: bytes,
    offsets: np.ndarray,
    first_line: int,
    path: str,
    stats: ReadStats,
    snapshot_symbol: Callable[[], str],
) -> FrameChunk | None:
    """A block read line by line (it holds a line that is not plain)."""
    frames: list[CapturedFrame] = []
    bounds = offsets.tolist()
    for i, (start, end) in enumerate(itertools.pairwise(bounds)):
        line = data[start:end].decode("utf-8", "surrogateescape").rstrip("\r\n")
        frame = _hftbacktest_line(line, first_line + i, path, stats, snapshot_symbol)
        if frame is not None:
            frames.append(frame)
    return FrameChunk.of(frames) if frames else None


def _hftbacktest_line(
    line: str, lineno: int, path: str, stats: ReadStats, snapshot_symbol: Callable[[], str]
) -> CapturedFrame | None:
    """One line of a hftbacktest file: its frame, or None (blank or bad, counted in ``stats``)."""
    if not line.strip():
        stats.blank += 1
        return None
    if _not_utf8(line):
        _bad(stats, path, lineno, "not UTF-8", line)
        return None
    ts, sep, frame = line.partition(" ")
    if not sep or not ts.isdigit() or not frame.startswith(("{", "[")):
        _bad(stats, path, lineno, "not '<recv ns> <json>'", line)
        return None
    problem = _implausible(int(ts))
    if problem is not None:
        _bad(stats, path, lineno, problem, line)
        return None
    if frame.startswith(_SNAPSHOT_PREFIX):
        symbol = _json_str_field(frame, "symbol") or snapshot_symbol()
        if not symbol:
            _bad(stats, path, lineno, "depth snapshot without a symbol or depth stream", line)
            return None
        stats.rest += 1
        return CapturedFrame(int(ts), frame, "rest", symbol, lineno)
    stats.ws += 1
    return CapturedFrame(int(ts), frame, "ws", "", lineno)


def _numbered(path: str, fh: IO[str]) -> Iterator[tuple[int, str]]:
    """(1-based number, line) of a capture's lines; a damaged gzip file ends them in ``DamagedCapture``."""
    lineno = 0
    try:
        for lineno, line in enumerate(fh, 1):
            yield lineno, line
    except _DAMAGE as exc:
        raise DamagedCapture(path, lineno, exc) from None


def _read_cryptofeed(path: str, stats: ReadStats, connects: bool) -> Iterator[CapturedFrame]:
    with open_capture(path) as fh:
        for lineno, raw_line in _numbered(path, fh):
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
    for key in ("symbol", "instId", "pair", "currency_pair", "contract"):
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
    for line in head_lines(path):
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
