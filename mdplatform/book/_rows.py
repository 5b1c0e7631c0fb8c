"""One book's raw rows as columns, for the rebuild's compiled path: the receive times (or the sampling clock) as
ints, the channel and payload texts as Arrow strings whose bytes the compiled reader (``_native``) reads in place,
without a Python string per row."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["BookRows", "arrow_texts", "text_buffers"]


def arrow_texts(column: pl.Series) -> pa.LargeStringArray:
    """A string column as one Arrow ``large_string`` array (int64 offsets into one data buffer)."""
    arr = column.rechunk().to_arrow()
    if not isinstance(arr, pa.LargeStringArray):
        arr = pc.cast(arr, pa.large_string())
    return arr


def text_buffers(arr: pa.LargeStringArray) -> tuple[pa.Buffer, pa.Buffer | bytes, int]:
    """(offsets, data, first offset index) of a ``large_string`` array, for the compiled readers."""
    _, offsets, data = arr.buffers()
    if offsets is None:  # no rows
        offsets = pa.py_buffer(np.zeros(1, np.int64).tobytes())
    return offsets, b"" if data is None else data, arr.offset


class BookRows:
    """``at[i]`` (ns), the channel and the payload of each row, in order (``row`` makes Python values of one)."""

    __slots__ = ("_buffers", "_takes", "at", "channel", "payload")

    def __init__(self, at: list[int], channel: pa.LargeStringArray, payload: pa.LargeStringArray) -> None:
        if not len(at) == len(channel) == len(payload):
            raise ValueError("the columns of BookRows must have one value per row")
        self.at = at
        self.channel = channel
        self.payload = payload
        self._takes: dict[str, np.ndarray] = {}
        self._buffers: tuple[pa.Buffer, pa.Buffer | bytes, int] | None = None

    @classmethod
    def of(cls, frame: pl.DataFrame) -> BookRows:
        """From lake rows in order: ``recv_ts`` (a datetime, or Int64 ns such as a clock), ``channel``, ``payload``."""
        return cls(
            frame.get_column("recv_ts").cast(pl.Int64).to_list(),
            arrow_texts(frame.get_column("channel")),
            arrow_texts(frame.get_column("payload")),
        )

    def select(self, keep: np.ndarray) -> BookRows:
        """The rows where ``keep`` (bool per row) is true, in order."""
        idx = np.flatnonzero(keep)
        at = np.asarray(self.at, np.int64)[idx].tolist()
        if len(idx) and idx[-1] - idx[0] + 1 == len(idx):  # one stretch: Arrow slices, no copy
            first = int(idx[0])
            return BookRows(at, self.channel.slice(first, len(idx)), self.payload.slice(first, len(idx)))
        mask = pa.array(keep)
        return BookRows(at, self.channel.filter(mask), self.payload.filter(mask))

    def __len__(self) -> int:
        return len(self.at)

    def row(self, i: int) -> tuple[int, str, str]:
        return self.at[i], self.channel[i].as_py(), self.payload[i].as_py()

    def payload_buffers(self) -> tuple[pa.Buffer, pa.Buffer | bytes, int]:
        """(offsets, data, first offset index) of the payloads (``text_buffers``)."""
        if self._buffers is None:
            self._buffers = text_buffers(self.payload)
        return self._buffers

    def takes(self, channel: str) -> np.ndarray:
        """One uint8 per row: 1 where the row is of ``channel`` and has a payload (kept for the next call)."""
        mask = self._takes.get(channel)
        if mask is None:
            hit = pc.and_(pc.equal(self.channel, channel), pc.is_valid(self.payload))
            mask = np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), np.uint8)
            self._takes[channel] = mask
        return mask
