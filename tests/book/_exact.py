"""What the exactness test compares: every output of the book rebuild and sampling on the recordings, reduced to
a SHA-256 of its exact values (float bits, nulls, list lengths, strings), so the values recorded from the
implementation before the compiled book can be compared with today's without committing the outputs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from decimal import Decimal

import polars as pl

from mdplatform.book import BookHeatmapSpec, BookSamples, Rebuild, book_clock, book_samples
from mdplatform.exchanges import get_exchange

S = 1_000_000_000
#: the spot recording's 2024-08-09 00:00:00 UTC, and a cut inside each recording
CUTS = {"binance": 1_723_161_600 * S, "binance-usdm": 1_723_161_420 * S, "binance-coinm": 1_723_161_600 * S}


def frame_digest(df: pl.DataFrame) -> str:
    """SHA-256 of a frame's column names, types and exact values (first 16 hex digits)."""
    h = hashlib.sha256()
    for name, dtype in df.schema.items():
        h.update(f"{name}:{dtype}\n".encode())
        s = df.get_column(name)
        if isinstance(dtype, pl.List):
            h.update(s.list.len().fill_null(-1).to_numpy().tobytes())
            s = s.explode()
        h.update(s.is_null().to_numpy().tobytes())
        if s.dtype.is_float():
            h.update(s.fill_null(0.0).to_numpy().tobytes())
        elif s.dtype.is_integer() or s.dtype.is_temporal():
            h.update(s.to_physical().fill_null(0).to_numpy().tobytes())
        else:  # strings, and decimals as their exact text
            h.update("\0".join(s.cast(pl.String).fill_null("").to_list()).encode())
    return h.hexdigest()[:16]


def _bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _sampled(prefix: str, out: BookSamples) -> Iterator[tuple[str, str]]:
    yield f"{prefix} samples", frame_digest(out.samples)
    yield f"{prefix} invalid", frame_digest(out.invalid)
    yield f"{prefix} heatmap", frame_digest(out.heatmap)
    yield f"{prefix} checkpoint", _bytes_digest(out.checkpoint.to_json())


def binance_digests(raw: pl.DataFrame, xid: str, symbol: str) -> dict[str, str]:
    """Samples, heatmaps, invalid intervals and checkpoints of one Binance recording, in several set-ups: the
    assets' (exchange clock, 1 s, 10 USD buckets), the receive clock at 500 ms with 0.1 USD buckets (edges that
    are not exact floats) and a 125 ms silence limit, two windows cut at ``CUTS`` (the second from the first's
    checkpoint), a gap forced by dropping frames under a coverage gap, and the rebuilt book's checkpoint every
    500 valid states."""
    rows = raw.filter(
        pl.col("symbol") == symbol, pl.col("channel").is_in(list(Rebuild(get_exchange(xid), symbol).channels))
    )
    out: dict[str, str] = {}
    spec = BookHeatmapSpec(Decimal(10), 100.0)
    out.update(_sampled("assets", book_samples(rows, get_exchange(xid), symbol, heatmap=spec)))
    fine = book_samples(
        rows,
        get_exchange(xid),
        symbol,
        clock="receive",
        interval_ns=S // 2,
        max_silence_ns=S // 8,
        heatmap=lambda mid: BookHeatmapSpec(Decimal("0.1"), 5.0),
    )
    out.update(_sampled("receive", fine))
    cut = CUTS[xid]
    at = book_clock(rows, get_exchange(xid))
    first = book_samples(rows.filter(at < cut), get_exchange(xid), symbol, end_ns=cut, heatmap=spec)
    out.update(_sampled("first window", first))
    second = book_samples(
        rows.filter(at >= cut), get_exchange(xid), symbol, start_ns=cut, checkpoint=first.checkpoint, heatmap=spec
    )
    out.update(_sampled("second window", second))
    # five depth frames lost near the end (the rows after a gap go one by one), and a coverage gap ending at the
    # frame that finds it: not bridged, no sample in it
    depth = rows.with_row_index().with_columns(at=at).filter(pl.col("channel") == "depth")
    cut = depth.height - 1_500
    gapped = rows.with_row_index().filter(~pl.col("index").is_in(depth["index"][cut : cut + 5].implode()))
    lost = (depth["at"][cut - 1] - S // 2, depth["at"][cut + 5], "test")
    out.update(
        _sampled("gap", book_samples(gapped.drop("index"), get_exchange(xid), symbol, heatmap=spec, gaps=[lost]))
    )
    out["states"] = _states_digest(Rebuild(get_exchange(xid), symbol), rows)
    return out


def okx_digests(raw: pl.DataFrame) -> dict[str, str]:
    """The OKX recording's three books (checksums verified on every update), sampled with heatmaps."""
    out: dict[str, str] = {}
    for symbol, bucket in (("BTC-USDT", "10"), ("BTC-USD-220527", "1"), ("UNI-USD-SWAP", "0.01")):
        spec = BookHeatmapSpec(Decimal(bucket), 100.0)
        out.update(_sampled(symbol, book_samples(raw, get_exchange("okx"), symbol, heatmap=spec)))
        out[f"{symbol} states"] = _states_digest(Rebuild(get_exchange("okx"), symbol), raw, every=10)
    return out


def _states_digest(rebuild: Rebuild, raw: pl.DataFrame, every: int = 500) -> str:
    h = hashlib.sha256()
    for i, at in enumerate(rebuild.states(raw)):
        book = rebuild.book
        h.update(repr((at, book.update_id, book.best_bid(), book.best_ask(), book.depth())).encode())
        if i % every == 0:
            h.update(rebuild.checkpoint().to_json())
    return h.hexdigest()[:16]
