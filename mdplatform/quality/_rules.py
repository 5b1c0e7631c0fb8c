"""What a suite is before Great Expectations sees it: a frame and the rules (GX expectations by name, with their
arguments) to validate it with. Building one needs polars only; ``_gx`` turns it into GX objects when it runs.

Rules GX has no expectation for (an order between exact decimals, a time that must grow per stream, a candle's
span inside the observed coverage) are computed columns of the frame, named for what they say and validated by
GX like any other column (``flag``): the decimals are compared exactly in polars, and GX sees the verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from mdplatform.transforms import HOUR_NS, WINDOW, stamp_window

__all__ = [
    "Rule",
    "Suite",
    "between",
    "contract_part",
    "flag",
    "flag_columns",
    "hour_start",
    "in_set",
    "merge_suites",
    "not_null",
    "offset_s",
    "schema_matches",
    "schema_suite",
    "unique",
]

#: seconds in the hour a partition holds (the offsets of its times from the partition start are in [0, this))
HOUR_S = HOUR_NS // 10**9


@dataclass(frozen=True, slots=True)
class Rule:
    """One GX expectation: its class name in ``great_expectations.expectations``, its arguments, and what it
    says in words (the check's message and the Data Docs' description)."""

    expectation: str
    kwargs: Mapping[str, Any]
    what: str
    #: a ``unique`` rule's key columns: its flag column is computed on the suite's frame (``Suite``)
    key: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Suite:
    """``frame`` validated by ``rules`` as the GX suite ``name``. ``shown``: the columns of an example row
    (default: all). ``gate``: when it fails the suites after it are not run (a schema suite: the columns the
    others read may be missing or of another type)."""

    name: str
    frame: pl.DataFrame
    rules: tuple[Rule, ...]
    shown: tuple[str, ...] = ()
    gate: bool = False
    #: what the frame's rows are, for messages ("trades", "candles"...)
    rows: str = "rows"

    def checked_frame(self) -> pl.DataFrame:
        """The frame as GX reads it: the flags of ``unique`` rules computed over all of it (a suite merged from
        several hours sees a key repeated in two of them), and a null flag false (``flag_columns``)."""
        unique = {r.kwargs["column"]: ~pl.struct(r.key).is_duplicated() for r in self.rules if r.key}
        return self.frame.with_columns(**unique).with_columns(pl.col(flag_columns(self.rules)).fill_null(False))


def not_null(columns: Sequence[str]) -> list[Rule]:
    return [Rule("ExpectColumnValuesToNotBeNull", {"column": c}, f"{c} is not null") for c in columns]


def between(
    column: str,
    lo: float | None,
    hi: float | None,
    what: str,
    *,
    strict_lo: bool = False,
    strict_hi: bool = False,
    where: str | None = None,
) -> Rule:
    """``lo <= column <= hi`` (either bound may be open); ``where``: only the rows of this pandas condition."""
    kwargs: dict[str, Any] = {"column": column, "min_value": lo, "max_value": hi}
    if strict_lo:
        kwargs["strict_min"] = True
    if strict_hi:
        kwargs["strict_max"] = True
    if where is not None:
        kwargs |= {"row_condition": where, "condition_parser": "pandas"}
    return Rule("ExpectColumnValuesToBeBetween", kwargs, what)


def in_set(column: str, values: Sequence[object], what: str) -> Rule:
    return Rule("ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)}, what)


def flag(column: str, what: str) -> Rule:
    """A computed boolean column that must be true on every row (a null counts as false: ``flag_columns``)."""
    return in_set(column, [True], what)


def flag_columns(rules: Sequence[Rule]) -> list[str]:
    """The columns of the ``flag`` rules: GX skips a column's nulls, so these are filled with false before it
    reads them (a flag computed from a null must not pass unseen)."""
    return [
        r.kwargs["column"]
        for r in rules
        if r.expectation == "ExpectColumnValuesToBeInSet" and r.kwargs["value_set"] == [True]
    ]


def unique(columns: Sequence[str], what: str) -> Rule:
    """One row per value of ``columns``: a flag computed by polars (``Suite.checked_frame``), false on every copy
    of a repeated key (as GX's ``ExpectCompoundColumnsToBeUnique`` counts them, which costs its pandas hashing of
    every key: 1.4 s of a day's trades against a tenth of that)."""
    return replace(flag(f"one_row_per_{'_'.join(columns)}", what), key=tuple(columns))


def offset_s(column: str, start_ns: int | pl.Expr) -> pl.Expr:
    """Seconds from the partition start (ns, or each row's: ``hour_start``) to ``column`` (a UTC ns datetime)."""
    return (pl.col(column).dt.epoch("ns") - start_ns) / 1e9


def hour_start(df: pl.DataFrame, start_ns: int | None) -> tuple[pl.DataFrame, pl.Expr]:
    """(``df`` with each row's partition start in ``WINDOW``, that column): ``start_ns`` for one partition's rows;
    None when ``df`` holds several hours' rows, each stamped with its own (``stamp_window``), checked at once.
    Every grouping and shift of a suite's frame is then keyed by ``WINDOW`` too, so each hour gets what it gets
    alone."""
    if start_ns is None:
        if WINDOW not in df.columns:
            raise ValueError(f"no partition start: neither start_ns nor a {WINDOW} column")
        return df, pl.col(WINDOW)
    return stamp_window(df, start_ns), pl.col(WINDOW)


def contract_part(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` without the hours' ``WINDOW`` column: what the partition files hold."""
    return df.drop(WINDOW, strict=False)


def schema_suite(table: str, df: pl.DataFrame, expected: Mapping[str, pl.DataType]) -> Suite:
    """The columns of ``df``, in order and typed, against the table's contract: one row per column
    (``"3. ts: Datetime(time_unit='ns', time_zone='UTC')"``), so a wrong, extra or misplaced column is an
    unexpected value GX names, and a missing one a row count off."""
    got = [f"{i}. {c}: {t!r}" for i, (c, t) in enumerate(df.schema.items(), 1)]
    want = [f"{i}. {c}: {t!r}" for i, (c, t) in enumerate(expected.items(), 1)]
    frame = pl.DataFrame({"column": got}, schema={"column": pl.String()})
    rules = (
        in_set("column", want, f"every column as the {table} contract has it (name, position, type)"),
        Rule("ExpectTableRowCountToEqual", {"value": len(want)}, f"{len(want)} columns"),
    )
    return Suite(f"{table}.schema", frame, rules, gate=True, rows="columns")


def schema_matches(df: pl.DataFrame, expected: Mapping[str, pl.DataType]) -> bool:
    """Whether ``df`` has the contract's columns, in order, with its types (else only the schema suite runs)."""
    return df.columns == list(expected) and all(df.schema[c] == t for c, t in expected.items())


def merge_suites(per_hour: Sequence[Sequence[Suite]]) -> list[Suite]:
    """The suites of several hours as one list to validate at once: a suite of the same name and rules in every
    hour becomes one over the hours' rows (the rules are relative to each row's own hour: offsets from the
    partition start, flags computed per hour), in the order the suites first appear. A gate suite (a schema) is
    kept once when every hour's frame is the same, else once per distinct frame; a suite whose rules differ between
    hours stays apart, named with its position."""
    if len(per_hour) == 1:
        return list(per_hour[0])
    groups: dict[str, list[Suite]] = {}
    for suites in per_hour:
        for suite in suites:
            groups.setdefault(suite.name, []).append(suite)
    merged: list[Suite] = []
    for name, suites in groups.items():
        first = suites[0]
        if first.gate or any(s.rules != first.rules for s in suites):
            distinct: list[Suite] = []
            for s in suites:
                if not any(d.rules == s.rules and d.frame.equals(s.frame) for d in distinct):
                    distinct.append(s)
            merged += [d if i == 0 else replace(d, name=f"{name}.{i + 1}") for i, d in enumerate(distinct)]
            continue
        frame = pl.concat([s.frame for s in suites], how="diagonal_relaxed")
        merged.append(replace(first, frame=frame))
    return merged
