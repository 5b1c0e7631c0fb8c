"""Coinbase Advanced Trade times: RFC 3339 text ("2023-02-09T20:32:50.714964855Z") to UTC nanoseconds, exactly.

Frames stamp ``timestamp`` with nanoseconds and trades their ``time`` with up to nanoseconds; a float would lose
the last digits, so the fraction is read as an integer of nanoseconds and the rest as whole seconds.
"""

from __future__ import annotations

import polars as pl

__all__ = ["format_rfc3339", "rfc3339_ns", "rfc3339_ns_expr"]

_SECOND_NS = 1_000_000_000
_DAY_S = 86_400
#: date, time, optional fraction (up to 9 digits), "Z" or an offset; Coinbase writes "Z"
_PATTERN = r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm: no datetime objects)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def rfc3339_ns(text: str) -> int | None:
    """``text`` (RFC 3339, fraction of at most 9 digits) as UTC ns; None when it is not one."""
    if (
        len(text) < 20
        or text[4] != "-"
        or text[7] != "-"
        or text[10] not in "Tt "
        or text[13] != ":"
        or text[16] != ":"
    ):
        return None
    try:
        y, mo, d = int(text[0:4]), int(text[5:7]), int(text[8:10])
        h, mi, s = int(text[11:13]), int(text[14:16]), int(text[17:19])
    except ValueError:
        return None
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        return None
    rest = text[19:]
    frac = 0
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        digits = rest[1:end]
        if not 1 <= len(digits) <= 9:
            return None
        frac = int(digits.ljust(9, "0"))
        rest = rest[end:]
    if rest in ("Z", "z"):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and rest[1:3].isdigit() and rest[4:6].isdigit():
        offset = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (1 if rest[0] == "+" else -1)
    else:
        return None
    seconds = _days_from_civil(y, mo, d) * _DAY_S + h * 3600 + mi * 60 + s - offset
    return seconds * _SECOND_NS + frac


def rfc3339_ns_expr(text: pl.Expr) -> pl.Expr:
    """``rfc3339_ns`` of a String column, vectorized: Int64 ns, null where a value is not RFC 3339."""
    parts = text.str.extract_groups(_PATTERN)
    whole = pl.concat_str(parts.struct.field("1"), pl.lit("T"), parts.struct.field("2")).str.to_datetime(
        "%Y-%m-%dT%H:%M:%S", time_unit="ns", time_zone="UTC", strict=False
    )
    frac = parts.struct.field("3").str.pad_end(9, "0").cast(pl.Int64, strict=False).fill_null(0)
    zone = parts.struct.field("4")
    sign = pl.when(zone.str.starts_with("-")).then(pl.lit(-1)).otherwise(pl.lit(1))
    offset_s = (
        pl.when(zone.str.to_uppercase() == "Z")
        .then(pl.lit(0, dtype=pl.Int64))
        .otherwise(
            sign
            * (
                zone.str.slice(1, 2).cast(pl.Int64, strict=False) * 3600
                + zone.str.slice(4, 2).cast(pl.Int64, strict=False) * 60
            )
        )
    )
    return whole.cast(pl.Int64) + frac - offset_s * _SECOND_NS


def format_rfc3339(ns: int, digits: int = 9) -> str:
    """UTC ns as RFC 3339 with ``digits`` fraction digits (0: none) and "Z" (the replay writes shifted times so)."""
    seconds, frac = divmod(ns, _SECOND_NS)
    days, rem = divmod(seconds, _DAY_S)
    # civil from days (Hinnant), the inverse of _days_from_civil
    z = days + 719_468
    era = (z if z >= 0 else z - 146_096) // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    y += m <= 2
    h, rem = divmod(rem, 3600)
    mi, s = divmod(rem, 60)
    text = f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    if digits:
        text += "." + f"{frac:09d}"[:digits]
    return text + "Z"
