"""What a validation found, in the terms a check shows: pass/fail, how many rows fail each rule, a few of them."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Outcome", "Report"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One rule of one suite. ``failing``: rows (or values) that break it, None when GX could not evaluate it
    (``error`` says why); ``examples``: a few of them, each column as text."""

    suite: str
    rule: str
    expectation: str
    passed: bool
    failing: int | None
    checked: int | None
    rows: str = "rows"
    examples: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None

    def message(self) -> str:
        """``candles: OHLC in order (low <= open, close <= high): 1 of 12 candles fail``."""
        if self.error is not None:
            return f"{self.suite}: {self.rule}: not evaluated ({self.error})"
        if self.failing is None:
            return f"{self.suite}: {self.rule}: fails"
        of = f" of {self.checked}" if self.checked is not None else ""
        return f"{self.suite}: {self.rule}: {self.failing}{of} {self.rows} fail"


@dataclass(frozen=True, slots=True)
class Report:
    """Every suite run for one partition (a suite after a failed gate is not run: ``skipped``)."""

    partition: str
    outcomes: list[Outcome]
    skipped: list[str] = field(default_factory=list)
    #: the Data Docs page of each suite's result (local paths), and the site's index
    pages: dict[str, str] = field(default_factory=dict)
    index: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def failing(self) -> int:
        """Rows failing, summed over the failed rules (a row breaking two rules counts twice)."""
        return sum(o.failing or 0 for o in self.failed)

    def problems(self) -> list[str]:
        return [o.message() for o in self.failed] + [f"{s}: not run (the schema is wrong)" for s in self.skipped]

    def examples(self, limit: int = 5) -> dict[str, list[dict[str, str]]]:
        """rule message -> its example rows, for the failed rules."""
        return {o.message(): o.examples[:limit] for o in self.failed if o.examples}

    def summary(self) -> dict[str, int | None]:
        """``suite: rule`` -> rows failing it, for every rule run (0 when it passed; None: not counted, a rule on
        the whole table or one GX could not evaluate)."""
        return {f"{o.suite}: {o.rule}": (o.failing if o.error is None else None) for o in self.outcomes}
