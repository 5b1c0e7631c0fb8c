"""A matplotlib figure of an exact pixel size, drawn with Agg (no pyplot, no global state), to PNG bytes."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100


def new_figure(width: int, height: int) -> Figure:
    if width < 100 or height < 100:
        raise ValueError(f"a picture of {width}x{height} px is too small (at least 100x100)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def empty_message(fig: Figure, text: str) -> bytes:
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return png_bytes(fig)
