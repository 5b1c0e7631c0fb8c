"""Landing a recording in the raw layer, row for row as the live collector would have landed it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._detect import detect_exchange
from ._read import BadLine, ReadStats, read_capture

__all__ = ["ImportStats", "capture_id", "import_capture"]

#: the collector's channel for REST depth snapshots (mdplatform.collector lands them under this name)
SNAPSHOT_CHANNEL = "depthSnapshot"

_SUFFIXES = (".gz", ".txt", ".jsonl", ".log", ".data")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class ImportStats:
    files: int = 0
    rows: int = 0
    #: (exchange, channel) -> rows landed
    rows_by_channel: dict[tuple[str, str], int] = field(default_factory=dict)
    #: what the reader saw: frames per kind, skipped client frames, blank lines and the bad lines
    read: ReadStats = field(default_factory=ReadStats)
    files_written: int = 0
    first_recv_ns: int | None = None
    last_recv_ns: int | None = None

    @property
    def bad_lines(self) -> list[BadLine]:
        return self.read.bad

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        channels = ", ".join(f"{ex}/{ch}={n}" for (ex, ch), n in sorted(self.rows_by_channel.items()))
        text = (
            f"imported {self.rows} rows from {self.files} file(s) into {self.files_written} part file(s): "
            f"{channels or 'nothing'}; skipped {self.read.sent} client frame(s), "
            f"{self.read.blank} blank line(s)"
        )
        if self.read.bad:
            first = self.read.bad[0]
            text += f"; {len(self.read.bad)} unreadable line(s), first {first.path}:{first.line} ({first.reason})"
        return text


def capture_id(path: str | Path) -> str:
    """A stable name for a capture file: its name without compression/text suffixes ("btcusdt_20240808")."""
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return _UNSAFE.sub("_", name) or "capture"


def import_capture(paths: Iterable[str | Path], exchange_id: str | None = None, root: str | None = None) -> ImportStats:
    """Write recordings into the raw layer under ``root`` (default: the configured lake).

    Every received frame becomes one raw row: ``recv_ts`` from the recording, channel/symbol from the
    exchange module's ``route``, ``conn_id`` "capture:<file id>" and ``seq`` counting frames from 1, as the
    collector does per connection. REST snapshot replies land like the collector lands them: channel
    "depthSnapshot", the instrument's symbol, ``conn_id`` "<conn_id>/rest" with its own counter.
    ``exchange_id`` None detects it per file. Each file is written by a ``RawWriter`` whose id derives from
    the file name, so importing the same file again replaces its part files instead of duplicating rows.
    """
    from ..exchanges import get_exchange
    from ..lake import RawWriter

    stats = ImportStats()
    for path in paths:
        exchange = get_exchange(exchange_id or detect_exchange(path))
        ex_id = exchange.id
        route = exchange.route
        file_id = capture_id(path)
        conn_id = f"capture:{file_id}"
        rest_conn_id = f"{conn_id}/rest"
        read = ReadStats()
        counts: dict[tuple[str, str], int] = {}
        seq = rest_seq = 0
        first = last = None
        with RawWriter(root, writer_id=f"capture-{file_id}") as writer:
            for cf in read_capture(path, stats=read):
                if cf.kind == "rest":
                    rest_seq += 1
                    channel, symbol = SNAPSHOT_CHANNEL, cf.symbol
                    writer.append(cf.recv_ns, ex_id, channel, symbol, rest_conn_id, rest_seq, cf.frame)
                else:
                    try:
                        channel, symbol = route(cf.frame)
                    except Exception as exc:
                        read.bad.append(BadLine(str(path), cf.line, f"route failed: {exc!r}", cf.frame[:120]))
                        continue
                    seq += 1
                    writer.append(cf.recv_ns, ex_id, channel, symbol, conn_id, seq, cf.frame)
                key = (ex_id, channel)
                counts[key] = counts.get(key, 0) + 1
                if first is None:
                    first = cf.recv_ns
                last = cf.recv_ns
        stats.files += 1
        stats.files_written += writer.stats.files_written
        stats.read.merge(read)
        for key, n in counts.items():
            stats.rows_by_channel[key] = stats.rows_by_channel.get(key, 0) + n
            stats.rows += n
        if first is not None and last is not None:
            stats.first_recv_ns = first if stats.first_recv_ns is None else min(stats.first_recv_ns, first)
            stats.last_recv_ns = last if stats.last_recv_ns is None else max(stats.last_recv_ns, last)
    return stats
