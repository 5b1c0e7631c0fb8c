"""Book heatmap (``mdplatform.book`` BOOK_HEATMAP rows of one book, or of the consolidated ``*`` book) -> PNG: time
across, price buckets up; resting bids in blues, resting asks in oranges, each cell's colour its ``intensity`` (the
bucket's size over the step's largest bucket, 0..1). Over it, optionally: the mid (``book_snapshots`` samples),
the taker trades (one dot per step and side at the VWAP, green buys and red sells, area growing with the volume),
the spans the book was invalid (``book_invalid``, grey) and, hatched, the prices beyond the range the book's last
snapshot covered (``bid_floor``/``ask_ceiling`` of the samples), where an empty bucket means "unknown", not "none".

The cells are two masked numpy images on the (step x bucket) grid, not a patch per row: an hour of 1 s steps by
~200 buckets draws in well under a second."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import polars as pl

from ._figure import empty_message, new_figure, png_bytes

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes

__all__ = ["ASK_CMAP", "BID_CMAP", "INVALID_COLOR", "pick_step", "render_book_heatmap", "step_ns"]

BID_CMAP = "Blues"
ASK_CMAP = "Oranges"
#: the shade of the spans the book was invalid (matplotlib grey level)
INVALID_COLOR = "0.55"
BUY_COLOR, SELL_COLOR = "#12b312", "#d11a1a"
#: windows up to this long are drawn from 1 s steps when both steps are there (7200 columns still resolve)
FINE_UP_TO_NS = 2 * 3_600 * 10**9
_DAY_NS = 86_400e9
_STEP = re.compile(r"^(\d+)(ms|s|m|h)$")
_UNIT_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3_600 * 10**9}
# the colormaps start here, not at white: a bucket with a little size stays visible against the empty background
_CMAP_FLOOR = 0.18


def step_ns(step: str) -> int:
    """ "1s" -> 1_000_000_000, "1m" -> 60 s (the labels of ``mdplatform.book.step_label``)."""
    m = _STEP.match(step)
    if m is None:
        raise ValueError(f"not a step: {step!r} (1s, 1m, 250ms, ...)")
    return int(m.group(1)) * _UNIT_NS[m.group(2)]


def pick_step(heatmap: pl.DataFrame) -> str:
    """The step to draw: the only one there, else 1 s for a window up to 2 hours (the finer one, when there are
    other pairs) and the coarsest otherwise."""
    steps: list[str] = sorted(set(heatmap.get_column("step")), key=step_ns)
    if len(steps) == 1:
        return steps[0]
    ts = heatmap.get_column("ts").dt.epoch("ns")
    span = int(ts.max()) - int(ts.min())  # type: ignore[arg-type]
    return steps[0] if span <= FINE_UP_TO_NS else steps[-1]


def render_book_heatmap(
    heatmap: pl.DataFrame,
    *,
    trades: pl.DataFrame | None = None,
    samples: pl.DataFrame | None = None,
    invalid: pl.DataFrame | None = None,
    step: str | None = None,
    width: int = 1200,
    height: int = 700,
    title: str = "",
) -> bytes:
    """PNG bytes of ``width`` x ``height`` px. ``heatmap``: BOOK_HEATMAP rows of a single exchange and symbol
    (``step``: which step to draw; default ``pick_step``). ``trades`` (TRADES), ``samples`` (``samples_schema``:
    ``ts``, ``mid``, optional ``bid_floor``/``ask_ceiling``), ``invalid`` (``invalid_schema``): overlays, cut to
    the drawn window; for a single book only their rows of its exchange and symbol are used, for the consolidated
    one (exchange ``*``) all of them (the caller picks the venues)."""
    fig = new_figure(width, height)
    if heatmap.is_empty():
        return empty_message(fig, f"{title}\nno book heatmap".strip())
    chosen = step or pick_step(heatmap)
    rows = heatmap.filter(pl.col("step") == chosen)
    if rows.is_empty():
        return empty_message(fig, f"{title}\nno {chosen} book heatmap".strip())
    if rows.select("exchange", "symbol").n_unique() != 1 or rows.get_column("bucket").n_unique() != 1:
        raise ValueError("render one exchange and symbol (one bucket size) per picture")
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib.colors import ListedColormap, PowerNorm
    from matplotlib.patches import Patch
    from matplotlib.ticker import StrMethodFormatter

    exchange, symbol = str(rows.get_column("exchange")[0]), str(rows.get_column("symbol")[0])
    dt = step_ns(chosen)
    bucket_dec = rows.get_column("bucket")[0]
    bucket = float(bucket_dec)
    ts = rows.get_column("ts").dt.epoch("ns").to_numpy()
    t0 = int(ts.min())
    cols = (ts - t0) // dt
    edges = rows.get_column("price").cast(pl.Float64).to_numpy()
    low = float(edges.min())
    cells = np.rint((edges - low) / bucket).astype(np.int64)
    n_cols, n_rows = int(cols.max()) + 1, int(cells.max()) + 1
    t1 = t0 + n_cols * dt
    intensity = rows.get_column("intensity").to_numpy()
    is_bid = (rows.get_column("side") == "bid").to_numpy()

    def image(mask: np.ndarray[Any, Any]) -> np.ma.MaskedArray[Any, Any]:
        grid = np.full((n_rows, n_cols), np.nan)
        grid[cells[mask], cols[mask]] = intensity[mask]
        return np.ma.masked_invalid(grid)

    def cmap(name: str) -> ListedColormap:
        import matplotlib

        return ListedColormap(matplotlib.colormaps[name](np.linspace(_CMAP_FLOOR, 1.0, 256)))

    ax = fig.add_subplot()
    ax.set_facecolor("white")
    extent = (_date(t0), _date(t1), low, low + n_rows * bucket)
    # a mild power: one wall near the mid takes intensity 1 and would otherwise leave the rest pale
    norm = PowerNorm(gamma=0.7, vmin=0.0, vmax=1.0)
    shown = {}
    for side, name in (("bid", BID_CMAP), ("ask", ASK_CMAP)):
        shown[side] = ax.imshow(
            image(is_bid if side == "bid" else ~is_bid),
            cmap=cmap(name),
            norm=norm,
            origin="lower",
            aspect="auto",
            interpolation="nearest",
            extent=extent,
            zorder=1,
        )
    y_lo, y_hi = extent[2], extent[3]
    legend: list[Any] = []
    single = exchange != "*"
    known: tuple[float, float] | None = None  # the highest bid floor and lowest ask ceiling hatched

    if samples is not None and not samples.is_empty():
        mine = _cut(_same_book(samples, exchange, symbol) if single else samples, "ts", t0, t1)
        if not mine.is_empty():
            per_step = _per_step(mine, t0, dt)
            x = _date(per_step.get_column("_x").to_numpy())
            mid = per_step.get_column("mid").to_numpy()
            if np.isfinite(mid).any():
                (line,) = ax.plot(x, mid, color="black", lw=0.8, zorder=6, label="mid")  # over the dots: they sit on it
                legend.append(line)
                y_lo, y_hi = min(y_lo, float(np.nanmin(mid))), max(y_hi, float(np.nanmax(mid)))
            known = _unknown_range(ax, per_step, x, dt)

    if trades is not None and not trades.is_empty():
        mine = _cut(_same_book(trades, exchange, symbol) if single else trades, "ts", t0, t1)
        if not mine.is_empty():
            dots = (
                mine.with_columns(
                    _k=(pl.col("ts").dt.epoch("ns") - t0) // dt,
                    _p=pl.col("price").cast(pl.Float64),
                    _v=pl.col("size").cast(pl.Float64),
                )
                # one dot per step and side (at the VWAP): thousands of trades a minute would bury the book
                .group_by("_k", "side")
                .agg(vwap=(pl.col("_p") * pl.col("_v")).sum() / pl.col("_v").sum(), volume=pl.col("_v").sum())
                .filter(pl.col("volume") > 0)
            )
            peak = float(dots.get_column("volume").max())  # type: ignore[arg-type]
            for side, color, label in (("buy", BUY_COLOR, "taker buys"), ("sell", SELL_COLOR, "taker sells")):
                d = dots.filter(pl.col("side") == side)
                if d.is_empty():
                    continue
                x = _date(t0 + (d.get_column("_k").to_numpy() + 0.5) * dt)
                area = 3 + 45 * np.sqrt(d.get_column("volume").to_numpy() / peak)
                legend.append(
                    ax.scatter(
                        x,
                        d.get_column("vwap").to_numpy(),
                        s=area,
                        c=color,
                        edgecolors="black",
                        linewidths=0.25,
                        alpha=0.8,
                        zorder=5,
                        label=f"{label} (area ~ sqrt volume)",
                    )
                )

    if invalid is not None and not invalid.is_empty():
        mine = _same_book(invalid, exchange, symbol) if single else invalid
        spans = mine.select(s=pl.col("start").dt.epoch("ns"), e=pl.col("end").dt.epoch("ns")).filter(
            pl.col("e") > t0, pl.col("s") < t1
        )
        for s, e in spans.iter_rows():
            # a sub-second gap would vanish at 1 s per column: drawn at least one column wide
            s, e = max(s, t0), min(max(e, s + dt), t1)
            ax.axvspan(_date(s), _date(e), color=INVALID_COLOR, lw=0, zorder=3)
        if spans.height:
            legend.append(Patch(color=INVALID_COLOR, label="no valid book"))

    pad = (y_hi - y_lo) * 0.02
    ax.set_ylim(y_lo - pad, y_hi + pad)
    if known is not None and (known[0] > y_lo - pad or known[1] < y_hi + pad):  # the hatching shows
        legend.append(Patch(facecolor="white", edgecolor="0.6", hatch="////", label="beyond the snapshot's range"))
    ax.set_xlim(_date(t0), _date(t1))
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    decimals = max(0, -bucket_dec.normalize().as_tuple().exponent)
    ax.yaxis.set_major_formatter(StrMethodFormatter(f"{{x:,.{decimals}f}}"))
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"price (buckets of {bucket_dec.normalize():f})")
    ax.grid(color="0.85", lw=0.4, zorder=0)
    ax.set_axisbelow(True)
    where = "all venues, USD-like quotes" if not single else exchange
    ax.set_title(title or f"{symbol} resting book ({where}), {chosen} steps", fontsize=11)
    if legend:
        ax.legend(handles=legend, loc="upper left", fontsize=8, framealpha=0.85, markerscale=0.8)
    # two slim bars side by side (each new one goes next to the axes: ask first is outermost), ticks only on the
    # outer one: they share the 0..1 scale
    for side, pad in (("ask", 0.03), ("bid", 0.008)):
        bar = fig.colorbar(shown[side], ax=ax, fraction=0.018, pad=pad, aspect=30)
        bar.ax.set_title(side, fontsize=8)
        bar.set_ticks([0, 0.25, 0.5, 0.75, 1])
        bar.ax.tick_params(labelsize=7, labelright=side == "ask", length=2 if side == "ask" else 0)
        if side == "ask":
            bar.set_label("intensity (share of the step's largest bucket)", fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)


def _date(ns: Any) -> Any:
    """matplotlib dates (days since 1970-01-01) of UTC ns (a number or a numpy array)."""
    return ns / _DAY_NS


def _same_book(df: pl.DataFrame, exchange: str, symbol: str) -> pl.DataFrame:
    if "exchange" in df.columns and "symbol" in df.columns:
        return df.filter(pl.col("exchange") == exchange, pl.col("symbol") == symbol)
    return df


def _cut(df: pl.DataFrame, column: str, lo: int, hi: int) -> pl.DataFrame:
    t = pl.col(column).dt.epoch("ns")
    return df.filter(t >= lo, t < hi)


def _per_step(samples: pl.DataFrame, t0: int, dt: int) -> pl.DataFrame:
    """Mean mid per step at the step's centre (the column it belongs to), the narrowest known range (highest
    floor, lowest ceiling), and a null row after each missing step so the line breaks over gaps."""
    known = [c for c in ("bid_floor", "ask_ceiling") if c in samples.columns]
    agg = [pl.col("mid").cast(pl.Float64).mean()]
    agg += [pl.col("bid_floor").max()] if "bid_floor" in known else []
    agg += [pl.col("ask_ceiling").min()] if "ask_ceiling" in known else []
    steps = samples.with_columns(_k=(pl.col("ts").dt.epoch("ns") - t0) // dt).group_by("_k").agg(agg).sort("_k")
    k = steps.get_column("_k")
    gaps = steps.filter((k.shift(-1) - k).fill_null(1) > 1).select(_k=pl.col("_k") + 1)
    out = pl.concat([steps, gaps], how="diagonal").sort("_k")
    return out.with_columns(_x=t0 + (pl.col("_k") + 0.5) * dt).fill_nan(None)


def _unknown_range(ax: Axes, per_step: pl.DataFrame, x: np.ndarray[Any, Any], dt: int) -> tuple[float, float] | None:
    """Hatch below the bid floor and above the ask ceiling: prices the book's snapshot never covered. Returns the
    highest floor and lowest ceiling hatched (None: the samples say nothing of the range)."""
    import numpy as np

    bounds = {"bid_floor": -np.inf, "ask_ceiling": np.inf}
    drawn = False
    half = dt / 2 / _DAY_NS
    lefts, rights = x - half, x + half
    xs = np.column_stack([lefts, rights]).ravel()  # each step's value held across its column
    for column, below in (("bid_floor", True), ("ask_ceiling", False)):
        if column not in per_step.columns:
            continue
        v = per_step.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy()
        if not np.isfinite(v).any():
            continue
        ys = np.repeat(v, 2)
        far = -1e18 if below else 1e18  # cut by the y limits set afterwards
        ax.fill_between(
            xs,
            far,
            ys,
            where=np.isfinite(ys),
            facecolor="none",
            edgecolor="0.6",
            hatch="////",
            lw=0,
            zorder=0.5,  # under the cells: hatched where nothing is drawn, i.e. an empty bucket is unknown
        )
        drawn = True
        bounds[column] = float(np.nanmax(v) if below else np.nanmin(v))
    return (bounds["bid_floor"], bounds["ask_ceiling"]) if drawn else None
