"""The heatmap pictures in an asset's materialization metadata, where the UI shows them.

The Dagster UI (1.13) renders a markdown metadata value in place, on the asset's page (latest materialization, the
events list), only while the value is under 1,000 characters; a longer one becomes a "[Show Markdown]" link to a
dialog. So each materialization carries the hour's first picture as a thumbnail small enough to be shown in place
(``picture``: a palette PNG in a data URI, which the UI's markdown sanitizer allows), the full-size pictures in a
second value (``pictures (<hour>)``, the dialog) and the files written under ``<lake>/pictures/``.
"""

from __future__ import annotations

import base64
import io

from dagster import MetadataValue

from ._books import picture_path
from ._settings import Settings

__all__ = ["INLINE_LIMIT", "picture_files_metadata", "picture_metadata", "thumbnail"]

#: the UI shows a markdown value in place below this length (MetadataEntry.tsx: ``mdStr.length < 1000``)
INLINE_LIMIT = 1000
#: full-size pictures embedded in one materialization's metadata (every one is written under pictures/)
SHOWN = 3
#: thumbnail widths tried, largest first, until the markdown fits ``INLINE_LIMIT``
_WIDTHS = (240, 200, 160, 128, 96, 64)
_COLORS = (16, 8, 4)


def _markdown(name: str, png: bytes) -> str:
    return f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"


def thumbnail(name: str, png: bytes, limit: int = INLINE_LIMIT) -> str | None:
    """Markdown of a shrunk, palette copy of the picture under ``limit`` characters (the largest that fits), or
    None if none does."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
    for width in _WIDTHS:
        height = max(1, round(rgb.height * width / rgb.width))
        small = rgb.resize((width, height), Image.Resampling.LANCZOS)
        for colors in _COLORS:
            out = io.BytesIO()
            small.quantize(colors, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
            text = _markdown(name, out.getvalue())
            if len(text) < limit:
                return text
    return None


def picture_metadata(
    settings: Settings, table: str, hour: int, pictures: list[tuple[str, bytes]]
) -> dict[str, MetadataValue]:
    """The metadata values of an hour's pictures (module doc); says why there are none when there are none."""
    from .partitions import hour_key

    if not pictures:
        why = "pictures are off (MDP_PICTURES=0)" if not settings.draw else "nothing to draw this hour"
        return {"picture": MetadataValue.md(why)}
    name, first = pictures[0]
    small = thumbnail(name, first)
    return {
        "picture": MetadataValue.md(small or f"{name}: too detailed for a thumbnail, see the pictures below"),
        f"pictures ({hour_key(hour)})": MetadataValue.md(
            "\n\n".join(f"**{n}**\n\n{_markdown(n, png)}" for n, png in pictures[:SHOWN])
        ),
        "picture_files": MetadataValue.json([picture_path(settings, table, hour, n) for n, _ in pictures]),
    }


def picture_files_metadata(settings: Settings, table: str, hour: int, names: list[str]) -> dict[str, MetadataValue]:
    """The metadata of an hour's pictures when a run of several hours shows only its last hour's in the UI (a
    range's every picture in its events would grow them without bound): the files, or why there are none."""
    if not names:
        return picture_metadata(settings, table, hour, [])
    return {
        "picture": MetadataValue.md("the run's last hour shows its pictures here; this hour's are its picture_files"),
        "picture_files": MetadataValue.json([picture_path(settings, table, hour, n) for n in names]),
    }
