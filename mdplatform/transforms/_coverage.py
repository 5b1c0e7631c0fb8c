"""Which stretches of exchange time each stream was observed in, and why the others were not.

The evidence, from the collector's ``events`` (see ``mdplatform.exchanges.EventKind``) and the trades themselves:

- **Liveness points** of a connection: ``start`` (its first exchange time), ``alive`` (a pong came back for a ping
  sent at ``recv_ts``: everything sent before it had arrived, so the exchange clock had passed the newest frame's
  time plus the local time elapsed since that frame), ``close`` (the newest exchange time it delivered), and for
  trade streams every trade received (its own time). Points received no more than ``max_silence`` apart form a
  *run*: the stream is covered from the run's first connection point to its last point. Every covered stretch
  needs receive-time evidence: a point whose exchange time runs ahead of the furthest one before it by more than
  the local time between them plus ``skew`` is a jump of the exchange clock (or of the frames' times), not time
  observed, and starts a new run, so the minutes jumped over stay a gap (``clock jump``). Exchange times from
  liveness points stop ``grace`` short, because streams of one connection are not exactly in order (trades arrive
  up to ~0.2 s after depth frames with later times in the bundled recordings); a received trade's own time needs
  no grace, but it cannot start a run (an exchange may push a past trade when a stream is subscribed).
- **Ids**: where an exchange numbers a trade stream contiguously (``Capabilities.contiguous_ids``), two
  consecutive ids prove no trade happened between them (covered, even across a reconnect), unless their exchange
  times lie further apart than their receive times plus ``skew`` (the same clock jump: nothing was received over
  the time they would prove), and a jump proves trades were lost (a gap, whatever the connection said).
- **Book sync**: a book stream is not covered from a ``gap``/``checksum`` event until its ``synced`` event.
- **Backfill**: a ``backfilled`` event (``mdp backfill``, lake ``backfill_events/``) proves its span of a trade
  stream whole from the exchange's REST history; such stretches are covered with the detail saying so. Backfilled
  trades are evidence only through their ids, never liveness points (they were not received live).

A stream's rows cover its hour up to its *horizon*: the end of its connection's last run while that connection is
live (per connection, so a lagging connection holds back only its own streams), or, once the stream's connection
has ended, as far as any connection of the exchange has shown the exchange clock to have passed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import polars as pl

from mdplatform._time import SECOND_NS
from mdplatform.exchanges import (
    ALIVE,
    BACKFILLED,
    CHECKSUM,
    CLOSE,
    GAP,
    START,
    SUB_ERROR,
    SUBSCRIBED,
    SYNCED,
    UNREACHABLE,
)
from mdplatform.schemas import BACKFILL_CONN_PREFIX, COVERAGE

from ._intervals import Span, covering, key_ids, merge_intervals, overlap_ns
from ._window import WINDOW as _W
from ._window import split_windows, stamp_window

__all__ = [
    "COVERED",
    "GAP_STATUS",
    "CoverageRules",
    "StreamKinds",
    "compute_coverage",
    "compute_coverage_windows",
    "empty_coverage",
    "symbol_coverage",
    "trade_gaps",
]

COVERED = "covered"
GAP_STATUS = "gap"

#: gap reasons
NOT_CONNECTED = "not connected"
LOST_ON_CRASH = "lost on crash"
SILENT = "silent"
CLOCK_JUMP = "clock jump"
ID_GAP = "id gap"
SEQUENCE_GAP = "sequence gap"
CHECKSUM_MISMATCH = "checksum mismatch"
REFUSED = "subscription refused"
#: detail of covered stretches proven by REST history rather than live
BACKFILLED_DETAIL = "backfilled from the exchange's REST history"

_STREAM = ["exchange", "channel", "symbol"]
_WSTREAM = [_W, *_STREAM]
_INF = 2**62


@dataclass(frozen=True, slots=True)
class CoverageRules:
    """``grace``: how far streams of one connection may be out of order; ``max_silence``: local time between two
    liveness points beyond which the stretch between them is not proven (the collector pings every 5 s);
    ``skew``: an exchange time further ahead of its receive time than this is not believed."""

    grace_ns: int = SECOND_NS
    max_silence_ns: int = 15 * SECOND_NS
    skew_ns: int = 10 * SECOND_NS


@dataclass(frozen=True, slots=True)
class StreamKinds:
    """What coverage needs to know of one exchange (from its module's capabilities)."""

    normalize_symbol: Callable[[str], str]
    trade_channels: frozenset[str]
    contiguous_ids: frozenset[str]


def empty_coverage() -> pl.DataFrame:
    return pl.DataFrame(schema=COVERAGE)


def _ns(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Int64)


def _normalized(df: pl.DataFrame, kinds: Mapping[str, StreamKinds]) -> pl.DataFrame:
    """``symbol`` (the exchange's own id) replaced by the platform's BASE-QUOTE form."""
    pairs = df.select("exchange", "symbol").unique().rows()
    mapping = {f"{ex}\x00{sym}": (kinds[ex].normalize_symbol(sym) if ex in kinds and sym else sym) for ex, sym in pairs}
    key = pl.concat_str(pl.col("exchange"), pl.lit("\x00"), pl.col("symbol"))
    return df.with_columns(symbol=key.replace_strict(mapping, return_dtype=pl.String))


def _conn_points(events: pl.DataFrame, rules: CoverageRules) -> pl.DataFrame:
    """(_w, exchange, conn_id, r, est): local time of a liveness point and the exchange time it proves passed."""
    r, e, fr = _ns("recv_ts"), _ns("exchange_ts"), _ns("frame_recv_ts")
    return (
        events.filter(
            pl.col("kind").is_in([START, ALIVE, CLOSE])
            & pl.col("exchange_ts").is_not_null()
            # an exchange time far ahead of when it arrived is a broken clock or a broken frame: not evidence
            & pl.col("frame_recv_ts").is_not_null()
            & (e - fr <= rules.skew_ns)
        )
        .select(
            _W,
            "exchange",
            "conn_id",
            r.alias("r"),
            (e + pl.when(pl.col("kind") == ALIVE).then(r - fr).otherwise(0)).alias("est"),
        )
        .sort(_W, "exchange", "conn_id", "r")
    )


def _runs(events: pl.DataFrame, trades: pl.DataFrame, points: pl.DataFrame, rules: CoverageRules) -> pl.DataFrame:
    """Per stream and connection, its runs: (start, end) exchange ns, the local span (r_first, r_last), when the
    connection's next run began (``next_r``, null for its last) and how the connection closed (null: no close)."""
    subs = (
        events.filter(pl.col("kind") == SUBSCRIBED)
        .group_by(_W, "exchange", "conn_id", "channel", "symbol")
        .agg(sub_r=_ns("recv_ts").min())
    )
    refused = events.filter((pl.col("kind") == SUB_ERROR) & (pl.col("channel") != "")).select(
        _W, "exchange", "conn_id", "channel", "symbol"
    )
    subs = subs.join(refused.unique(), on=[_W, "exchange", "conn_id", "channel", "symbol"], how="anti")
    conn = (
        subs.join(points, on=[_W, "exchange", "conn_id"])
        .filter(pl.col("r") >= pl.col("sub_r"))
        .select(*_WSTREAM, "conn_id", "r", "est", own=pl.lit(False))
    )
    own = trades.filter(~pl.col("conn_id").str.starts_with(BACKFILL_CONN_PREFIX)).select(
        *_WSTREAM, "conn_id", _ns("recv_ts").alias("r"), _ns("ts").alias("est"), own=pl.lit(True)
    )
    keys = [*_WSTREAM, "conn_id"]
    pts, ids = key_ids(pl.concat([conn, own]), keys)
    # stable: the connection's points ahead of its trades at equal times, and polars' multi-column sort of these
    # (a few points among many trades) seven times faster than unstable
    pts = pts.sort(["_key", "r"], maintain_order=True)
    prev_r = pl.col("r").shift(1).over("_key")
    silence = pl.col("r") - prev_r
    # how far the exchange time moved past the furthest point before this one, beyond the local time between them
    jumped = pl.col("est") - pl.col("est").cum_max().shift(1).over("_key") - silence
    pts = pts.with_columns(_new=((silence > rules.max_silence_ns) | (jumped > rules.skew_ns)).fill_null(True))
    pts = pts.with_columns(_run=pl.col("_new").cum_sum().over("_key"))
    closes = (
        events.filter(pl.col("kind") == CLOSE)
        .sort(_W, "recv_ts")
        .group_by(_W, "exchange", "conn_id")
        .agg(close=pl.col("detail").last())
    )
    return (
        pts.group_by(["_key", "_run"])
        .agg(
            # a received trade proves its stream up to its own time, but not from it: an exchange may push a past
            # trade on subscribing (OKX does), so a run starts at the connection's evidence when it has any
            start=pl.coalesce(pl.col("est").filter(~pl.col("own")).min(), pl.col("est").filter(pl.col("own")).min()),
            _own_end=pl.col("est").filter(pl.col("own")).max(),
            _conn_end=pl.col("est").filter(~pl.col("own")).max() - rules.grace_ns,
            r_first=pl.col("r").min(),
            r_last=pl.col("r").max(),
        )
        .with_columns(end=pl.max_horizontal("_own_end", "_conn_end"))
        .sort(["_key", "_run"])
        .with_columns(
            next_r=pl.col("r_first").shift(-1).over("_key"), next_start=pl.col("start").shift(-1).over("_key")
        )
        .join(ids, on="_key", how="left", maintain_order="left")
        .join(closes, on=[_W, "exchange", "conn_id"], how="left", maintain_order="left")
        .filter(pl.col("end") >= pl.col("start"))
        .select(*keys, "start", "end", "r_first", "r_last", "next_r", "close", "next_start")
    )


def _endings(runs: list[tuple[Any, ...]], skew_ns: int) -> list[tuple[int, int, str, str]]:
    """(start, end, how it ended, detail) of one stream's runs (rows of ``_runs``: start, end, conn_id, r_first,
    r_last, next_r, close, next_start). "open": its connection may still be delivering, so nothing after it is
    known; "clock jump": the connection's next run began with the exchange time far past this one's end in little
    local time."""
    out = []
    for start, end, conn, _, r_last, next_r, close, next_start in runs:
        if next_r is not None and next_start - end - (next_r - r_last) > skew_ns:
            local = (next_r - r_last) / SECOND_NS
            detail = f"exchange time jumped {(next_start - end) / SECOND_NS:.1f} s in {local:.1f} s received"
            out.append((start, end, CLOCK_JUMP, detail))
        elif next_r is not None:
            out.append((start, end, SILENT, f"nothing received for {(next_r - r_last) / SECOND_NS:.1f} s"))
        elif close is not None:
            out.append((start, end, NOT_CONNECTED, f"connection {conn} closed: {close}"))
        elif any(c != conn and r_first > r_last for _, _, c, r_first, *_ in runs):
            # a newer session of the stream began while this one never recorded its end: the collector died
            out.append((start, end, LOST_ON_CRASH, f"connection {conn} stopped without closing (crash or kill)"))
        else:
            out.append((start, end, "open", ""))
    return out


def _id_chains(
    trades: pl.DataFrame, kinds: Mapping[str, StreamKinds], skew_ns: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(proofs, gaps) of the contiguous-id trade streams: consecutive ids prove [t_a, t_b] (when received about as
    far apart); a jump loses it."""
    contiguous = [(ex, ch) for ex, k in kinds.items() for ch in k.contiguous_ids]
    if not contiguous or trades.height == 0:
        return pl.DataFrame(
            schema={_W: pl.Int64, **{k: pl.String for k in _STREAM}, "start": pl.Int64, "end": pl.Int64}
        ), (
            pl.DataFrame(
                schema={
                    _W: pl.Int64,
                    **{k: pl.String for k in _STREAM},
                    "start": pl.Int64,
                    "end": pl.Int64,
                    "missing": pl.Int64,
                    "detail": pl.String,
                }
            )
        )
    wanted = pl.DataFrame({"exchange": [e for e, _ in contiguous], "channel": [c for _, c in contiguous]})
    # the columns read, before the join (it copies every column it keeps)
    streams = trades.select(*_WSTREAM, "seq_id", "ts", "recv_ts", "conn_id").filter(pl.col("seq_id").is_not_null())
    keyed, ids = key_ids(streams.join(wanted, on=["exchange", "channel"], how="semi"), _WSTREAM)
    # sorted by stream, id, time: the first row of an id has its earliest time, the row before it the previous id
    same = pl.col("_key") == pl.col("_key").shift(1)
    chain = (
        keyed.select(
            "_key",
            "seq_id",
            t=_ns("ts"),
            r=_ns("recv_ts"),
            _fetched=pl.col("conn_id").str.starts_with(BACKFILL_CONN_PREFIX),
        )
        .sort("_key", "seq_id", "t")
        .filter((~(same & (pl.col("seq_id") == pl.col("seq_id").shift(1)))).fill_null(True))
        .with_columns(
            _prev_id=pl.when(same).then(pl.col("seq_id").shift(1)),
            _prev_t=pl.when(same).then(pl.col("t").shift(1)),
            _prev_r=pl.when(same).then(pl.col("r").shift(1)),
            _prev_fetched=pl.when(same).then(pl.col("_fetched").shift(1)),
        )
        .filter(pl.col("_prev_id").is_not_null())
        .with_columns(
            start=pl.min_horizontal("_prev_t", "t"),
            end=pl.max_horizontal("_prev_t", "t"),
            _step=pl.col("seq_id") - pl.col("_prev_id"),
            # received live, the two trades' exchange times may lie no further apart than their receive times
            # (plus the skew); trades fetched from REST history carry the fetch's time, not a receipt's
            _believed=(
                pl.col("_fetched")
                | pl.col("_prev_fetched")
                | ((pl.col("t") - pl.col("_prev_t")).abs() <= (pl.col("r") - pl.col("_prev_r")).abs() + skew_ns)
            ),
        )
    )
    # consecutive ids prove the time between them; a run of them proves its whole span (each pair touches the
    # next at a trade's time), merged per stream with the other runs' spans
    proving = (pl.col("_step") == 1) & pl.col("_believed")
    # a run's number is unique over the streams (a new stream starts a new run): the groups are the runs alone
    runs = (
        chain.with_columns(_run=(~proving | (pl.col("_key") != pl.col("_key").shift(1)).fill_null(True)).cum_sum())
        .filter(proving)
        .group_by("_run")
        .agg(pl.col("_key").first(), pl.col("start").min(), pl.col("end").max())
    )
    proofs = merge_intervals(runs, ["_key"]).join(ids, on="_key", how="left").select(*_WSTREAM, "start", "end")
    chain = chain.join(ids, on="_key", how="left", maintain_order="left")
    gaps = chain.filter(pl.col("_step") > 1).select(
        *_WSTREAM,
        "start",
        "end",
        missing=pl.col("_step") - 1,
        detail=pl.format("ids {}..{} missing", pl.col("_prev_id") + 1, pl.col("seq_id") - 1),
    )
    return proofs, gaps


def _book_holes(events: pl.DataFrame) -> pl.DataFrame:
    """Book streams out of sync: from a gap/checksum event to the next synced event of that stream."""
    keys = [_W, "exchange", "conn_id", "channel", "symbol"]
    rows = events.filter(pl.col("kind").is_in([GAP, CHECKSUM, SYNCED]) & pl.col("exchange_ts").is_not_null()).sort(
        [*keys, "recv_ts"]
    )
    return (
        rows.with_columns(
            _next_synced=pl.when(pl.col("kind") == SYNCED).then(_ns("exchange_ts")).backward_fill().over(keys)
        )
        .filter(pl.col("kind") != SYNCED)
        .select(
            *_WSTREAM,
            start=_ns("exchange_ts"),
            end=pl.col("_next_synced").fill_null(_INF),
            reason=pl.when(pl.col("kind") == GAP).then(pl.lit(SEQUENCE_GAP)).otherwise(pl.lit(CHECKSUM_MISMATCH)),
            detail=pl.col("detail"),
        )
    )


def _unreachable(events: pl.DataFrame) -> pl.DataFrame:
    """(stream, start, end, reason) a REST history fetch could not reach back to: ``unreachable`` events."""
    return (
        events.filter((pl.col("kind") == UNREACHABLE) & pl.col("exchange_ts").is_not_null())
        .select(
            *_WSTREAM,
            start=_ns("exchange_ts"),
            end=pl.col("detail").str.json_path_match("$.end").cast(pl.Int64, strict=False),
            reason=pl.col("detail").str.json_path_match("$.reason"),
        )
        .filter(pl.col("end") > pl.col("start"))
    )


def _backfilled(events: pl.DataFrame) -> pl.DataFrame:
    """(stream, start, end) proven by REST history fetches: ``backfilled`` events (start in ``exchange_ts``, end in
    the detail's JSON ``end``)."""
    return (
        events.filter((pl.col("kind") == BACKFILLED) & pl.col("exchange_ts").is_not_null())
        .select(
            *_WSTREAM,
            start=_ns("exchange_ts"),
            end=pl.col("detail").str.json_path_match("$.end").cast(pl.Int64, strict=False),
        )
        .filter(pl.col("end") > pl.col("start"))
    )


#: (window start, exchange, channel, symbol)
_Stream = tuple[int, str, str, str]


def _by_stream(df: pl.DataFrame, cols: list[str]) -> dict[_Stream, list[tuple[Any, ...]]]:
    out: dict[_Stream, list[tuple[Any, ...]]] = {}
    for row in df.sort([*_WSTREAM, cols[0]]).select(*_WSTREAM, *cols).iter_rows():
        out.setdefault((row[0], row[1], row[2], row[3]), []).append(row[4:])
    return out


def compute_coverage(
    events: pl.DataFrame,
    trades: pl.DataFrame,
    start_ns: int,
    end_ns: int,
    *,
    kinds: Mapping[str, StreamKinds],
    rules: CoverageRules | None = None,
) -> pl.DataFrame:
    """COVERAGE rows partitioning [start_ns, min(end_ns, horizon)) of every stream seen, covered or gap.

    ``events``: EVENTS rows received around the window (the assets read [start - lateness, end + lateness));
    ``trades``: the trades received in that span, TRADES plus TRADE_LINEAGE, deduplicated per channel but not
    across channels (each channel's ids are its own evidence). ``kinds``: per exchange id, what its channels are.
    """
    got = compute_coverage_windows(
        stamp_window(events, start_ns),
        stamp_window(trades, start_ns),
        [start_ns],
        end_ns - start_ns,
        kinds=kinds,
        rules=rules,
    )
    return got[start_ns]


def compute_coverage_windows(
    events: pl.DataFrame,
    trades: pl.DataFrame,
    starts: Sequence[int],
    length: int,
    *,
    kinds: Mapping[str, StreamKinds],
    rules: CoverageRules | None = None,
) -> dict[int, pl.DataFrame]:
    """``compute_coverage`` of each window [w, w + length) for w in ``starts``, at once: start -> its COVERAGE rows.

    ``events`` and ``trades`` hold what each window would be given alone, every row stamped with the start of
    the window it was read for (``_w``, Int64): a row two windows read is in both, once for each. Each window
    gets exactly what it gets alone (every grouping, sort and join is keyed by its window), from a few dozen
    polars calls for all of them instead of for each (a range of quiet hours spent most of an hour's coverage on
    the calls)."""
    rules = rules or CoverageRules()
    if events.height == 0 and trades.height == 0:
        return {w: empty_coverage() for w in starts}  # no stream was seen: nothing to tile (before collection began)
    events = _normalized(events.filter(pl.col("exchange").is_in(list(kinds))), kinds)
    trades = trades.filter(pl.col("exchange").is_in(list(kinds)))
    points = _conn_points(events, rules)
    runs = _runs(events, trades, points, rules)
    proofs, id_gaps = _id_chains(trades, kinds, rules.skew_ns)
    holes = _book_holes(events)
    backfilled = _backfilled(events)
    unreachable_rows = _by_stream(_unreachable(events), ["start", "end", "reason"])
    refused = {tuple(r) for r in events.filter(pl.col("kind") == SUB_ERROR).select(_WSTREAM).unique().rows() if r[2]}

    # how far each exchange's clock is known to have passed, for streams whose connection has ended
    ex_horizon = {
        (w, ex): h for w, ex, h in points.group_by(_W, "exchange").agg(pl.col("est").max() - rules.grace_ns).iter_rows()
    }
    run_rows = _by_stream(runs, ["start", "end", "conn_id", "r_first", "r_last", "next_r", "close", "next_start"])
    proof_rows = _by_stream(proofs, ["start", "end"])
    gap_rows = _by_stream(id_gaps, ["start", "end", "missing", "detail"])
    hole_rows = _by_stream(holes, ["start", "end", "reason", "detail"])
    backfill_rows = _by_stream(backfilled, ["start", "end"])

    out: list[dict[str, Any]] = []
    streams = set(run_rows) | set(proof_rows) | set(gap_rows) | set(hole_rows) | set(refused) | set(backfill_rows)
    streams |= set(unreachable_rows)
    for stream in sorted(streams):
        start_ns = stream[0]
        runs_s = _endings(run_rows.get(stream, []), rules.skew_ns)
        live = any(kind == "open" for *_, kind, _ in runs_s)
        fetched = backfill_rows.get(stream, [])
        # what was observed, fetched, or found out of the history's reach: known up to there (a gap where unobserved)
        beyond = [e for _, e, _ in unreachable_rows.get(stream, [])]
        ends = [e for _, e, *_ in runs_s] + [e for _, e in [*proof_rows.get(stream, []), *fetched]] + beyond
        horizon = max(ends, default=start_ns)
        if not live:
            horizon = max(horizon, ex_horizon.get((start_ns, stream[1]), start_ns))
        hi = min(start_ns + length, horizon)
        if hi <= start_ns:
            continue
        out += _segment(
            stream,
            start_ns,
            hi,
            runs_s,
            proof_rows.get(stream, []),
            gap_rows.get(stream, []),
            hole_rows.get(stream, []),
            stream in refused,
            fetched,
            unreachable_rows.get(stream, []),
        )
    if not out:
        return {w: empty_coverage() for w in starts}
    cov = pl.DataFrame(out, schema_overrides={_W: pl.Int64, "start_time": pl.Int64, "end_time": pl.Int64})
    cov = _fill(cov, kinds).with_columns(
        pl.col("start_time", "end_time").cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")
    )
    return split_windows(cov.select(_W, *[pl.col(c).cast(t) for c, t in COVERAGE.items()]), starts)


def _merged(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _segment(
    stream: _Stream,
    lo: int,
    hi: int,
    runs: list[tuple[Any, ...]],
    proofs: list[tuple[Any, ...]],
    id_gaps: list[tuple[Any, ...]],
    holes: list[tuple[Any, ...]],
    refused: bool,
    fetched: list[tuple[Any, ...]],
    unreachable: list[tuple[Any, ...]],
) -> list[dict[str, Any]]:
    """[lo, hi) of one stream cut at every interval edge, each piece labelled, equal neighbours joined; a gap
    piece the exchange's REST history cannot reach back to says so in its detail."""
    run_spans = _merged([(s, e) for s, e, *_ in runs])
    fetched_spans = _merged([(s, e) for s, e in fetched])
    # what ended the run reaching furthest before a stretch says why the stretch was not observed
    endings = sorted((e, kind, detail) for _, e, kind, detail in runs)
    proof_spans = _merged([(s, e) for s, e in proofs])
    gap_spans = _merged_gaps(id_gaps)
    gap_index = [(s, e) for s, e, *_ in gap_spans]
    hole_spans = sorted((s, e, r, d) for s, e, r, d in holes)
    cuts = {lo, hi}
    for s, e, *_ in [*runs, *proofs, *id_gaps, *holes, *fetched, *unreachable]:
        cuts.update(x for x in (s, e) if lo < x < hi)
    edges = sorted(cuts)
    pieces: list[dict[str, Any]] = []
    counted: set[int] = set()
    for a, b in pairwise(edges):
        backfilled = covering(fetched_spans, a, b) is not None
        observed = backfilled or covering(run_spans, a, b) is not None or covering(proof_spans, a, b) is not None
        gap = covering(gap_index, a, b)
        hole = next((h for h in hole_spans if h[0] <= a and h[1] >= b), None)
        missing = None
        # an id gap's missing ids are counted once: on its first piece, in the hour where it starts
        if gap is not None and gap not in counted and gap_spans[gap][0] >= lo:
            counted.add(gap)
            missing = gap_spans[gap][2]
        piece: tuple[str, str | None, str | None, int | None]
        if backfilled and hole is None:
            # the fetch proved every trade of the stretch is in hand, whatever the live ids said
            piece = (COVERED, None, BACKFILLED_DETAIL, None)
        elif observed and gap is None and hole is None:
            piece = (COVERED, None, None, None)
        elif not observed:
            before = [x for x in endings if x[0] <= a]
            if refused and not runs:
                reason, detail = REFUSED, "the exchange refused the subscription"
            elif before and before[-1][1] != "open":
                reason, detail = before[-1][1], before[-1][2]
            else:
                reason, detail = NOT_CONNECTED, "no connection received this stream"
            if gap is not None:
                detail = f"{detail}; {gap_spans[gap][3]}"
            piece = (GAP_STATUS, reason, detail, missing)
        elif gap is not None:
            piece = (GAP_STATUS, ID_GAP, gap_spans[gap][3], missing)
        else:
            assert hole is not None
            piece = (GAP_STATUS, hole[2], hole[3], None)
        beyond = next((r for s, e, r in unreachable if s <= a and e >= b), None)
        if piece[0] == GAP_STATUS and beyond is not None:
            piece = (piece[0], piece[1], f"{piece[2]}; {beyond}" if piece[2] else beyond, piece[3])
        last = pieces[-1] if pieces else None
        if last is not None and last["end_time"] == a and (last["status"], last["reason"], last["detail"]) == piece[:3]:
            last["end_time"] = b
            if piece[3] is not None:
                last["missing"] = (last["missing"] or 0) + piece[3]
            continue
        pieces.append(
            {
                _W: stream[0],
                "exchange": stream[1],
                "channel": stream[2],
                "symbol": stream[3],
                "start_time": a,
                "end_time": b,
                "status": piece[0],
                "reason": piece[1],
                "detail": piece[2],
                "missing": piece[3],
                "filled": 0.0,
            }
        )
    return pieces


def _merged_gaps(gaps: list[tuple[Any, ...]]) -> list[tuple[int, int, int, str]]:
    """Id gaps (start, end, missing, detail) sorted, overlapping ones joined (touching ones stay apart: each
    piece of the stream is then attributed to one gap)."""
    out: list[tuple[int, int, int, str]] = []
    for s, e, n, d in sorted(gaps):
        if out and s < out[-1][1]:
            ps, pe, pn, pd = out[-1]
            out[-1] = (ps, max(pe, e), pn + n, f"{pd}; {d}")
        else:
            out.append((s, e, n, d))
    return out


def _fill(cov: pl.DataFrame, kinds: Mapping[str, StreamKinds]) -> pl.DataFrame:
    """``filled`` of each trade-stream gap: the share of it another trade stream of the same symbol covered."""
    pairs = [(ex, ch) for ex, k in kinds.items() for ch in k.trade_channels]
    trade_pairs = pl.DataFrame(
        {"exchange": [e for e, _ in pairs], "channel": [c for _, c in pairs]},
        schema={"exchange": pl.String, "channel": pl.String},
    )
    trade_rows = cov.join(trade_pairs, on=["exchange", "channel"], how="semi")
    covered: dict[tuple[int, str, str, str], list[Span]] = {}
    for w, ex, sym, ch, s, e in (
        trade_rows.filter(pl.col("status") == COVERED)
        .select(_W, "exchange", "symbol", "channel", "start_time", "end_time")
        .iter_rows()
    ):
        covered.setdefault((w, ex, sym, ch), []).append((s, e))
    filled: list[float] = []
    # per gap's stream: what the symbol's other trade streams covered (in the same window)
    others: dict[tuple[int, str, str, str], list[Span]] = {}
    trade_keys = set(trade_rows.select("exchange", "channel").unique().rows())
    for w, ex, sym, ch, status, s, e in cov.select(
        _W, "exchange", "symbol", "channel", "status", "start_time", "end_time"
    ).iter_rows():
        if status != GAP_STATUS or (ex, ch) not in trade_keys or e <= s:
            filled.append(0.0)
            continue
        if (w, ex, sym, ch) not in others:
            others[(w, ex, sym, ch)] = _merged(
                [sp for (v, x, y, c), spans in covered.items() if (v, x, y) == (w, ex, sym) and c != ch for sp in spans]
            )
        filled.append(round(overlap_ns(others[(w, ex, sym, ch)], s, e) / (e - s), 6))
    return cov.with_columns(filled=pl.Series(filled, dtype=pl.Float64))


def symbol_coverage(
    coverage: pl.DataFrame, trade_channels: Mapping[str, frozenset[str]], by: Sequence[str] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(covered, horizon) of each symbol's trades from COVERAGE rows: ``covered`` = disjoint (exchange, symbol,
    start, end) ns spans observed on any of the exchange's trade channels; ``horizon`` = (exchange, symbol,
    horizon) ns, how far its rows reach (candles closing later are not known closed). ``by``: more columns of
    ``coverage`` that set its rows apart (the hour of each of several hours' rows), kept in both."""
    pairs = [(ex, ch) for ex, chans in trade_channels.items() for ch in chans]
    wanted = pl.DataFrame(
        {"exchange": [e for e, _ in pairs], "channel": [c for _, c in pairs]},
        schema={"exchange": pl.String, "channel": pl.String},
    )
    keys = ["exchange", "symbol", *by]
    rows = coverage.join(wanted, on=["exchange", "channel"]).select(
        *keys, "status", start=_ns("start_time"), end=_ns("end_time")
    )
    covered = merge_intervals(rows.filter(pl.col("status") == COVERED), keys)
    horizon = rows.group_by(keys).agg(horizon=pl.col("end").max())
    return covered, horizon


def trade_gaps(
    coverage: pl.DataFrame, trade_channels: Mapping[str, frozenset[str]], start_ns: int, end_ns: int
) -> pl.DataFrame:
    """What is missing of each symbol's trades in [start_ns, end_ns): (exchange, symbol, channels, start, end,
    closed) ns spans no trade channel covered, between the symbol's first and last coverage row in the range (hours
    with no row at all in between count as missing: a collector down for hours leaves none); ``channels``: the
    trade channels the symbol was collected on; ``closed``: a covered stretch follows (the gap is over)."""
    pairs = [(ex, ch) for ex, chans in trade_channels.items() for ch in chans]
    wanted = pl.DataFrame(
        {"exchange": [e for e, _ in pairs], "channel": [c for _, c in pairs]},
        schema={"exchange": pl.String, "channel": pl.String},
    )
    rows = coverage.join(wanted, on=["exchange", "channel"]).select(
        "exchange", "symbol", "channel", "status", start=_ns("start_time"), end=_ns("end_time")
    )
    out: list[dict[str, Any]] = []
    for (exchange, symbol), group in rows.group_by("exchange", "symbol", maintain_order=True):
        lo, hi = max(start_ns, int(group["start"].min())), min(end_ns, int(group["end"].max()))  # type: ignore[arg-type]
        covered = _merged([(a, b) for st, a, b in group.select("status", "start", "end").iter_rows() if st == COVERED])
        channels = sorted(set(group.get_column("channel").to_list()))
        at = lo
        for a, b in [*covered, (hi, hi)]:
            if a > at and at < hi:
                out.append(
                    {
                        "exchange": exchange,
                        "symbol": symbol,
                        "channels": channels,
                        "start": at,
                        "end": min(a, hi),
                        "closed": a < hi,
                    }
                )
            at = max(at, b)
    return pl.DataFrame(
        out,
        schema={
            "exchange": pl.String,
            "symbol": pl.String,
            "channels": pl.List(pl.String),
            "start": pl.Int64,
            "end": pl.Int64,
            "closed": pl.Boolean,
        },
    ).sort("exchange", "symbol", "start")
