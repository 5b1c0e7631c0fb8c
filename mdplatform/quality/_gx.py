"""Great Expectations at work: an ephemeral context (no project folder, nothing online), the suites as GX
expectation suites over pandas batches, their results stored and rendered as Data Docs in a folder of the lake.

GX is imported here only, when a validation runs (it takes seconds and pulls in pandas): importing
``mdplatform.quality`` costs neither."""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import re
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import polars as pl

from ._report import Outcome, Report
from ._rules import Rule, Suite

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext

__all__ = ["preload", "validate"]

#: example rows kept per failed rule
EXAMPLES = 5
_SITE = "lake"
_SOURCE = "mdp"


#: modules GX imports at its own import for what the suites here never use (the KL-divergence and KS-test
#: expectations and their charts): loaded on first use instead, a third of GX's import (0.7-0.9 CPU-s of 2.2-2.4)
_DEFERRED = frozenset({"scipy.stats", "altair"})
_IMPORT_LOCK = threading.Lock()


class _Deferred(importlib.abc.MetaPathFinder):
    """Finds ``_DEFERRED`` modules as the other finders do, with a loader that runs the module's code when one of
    its attributes is first read (``importlib.util.LazyLoader``): whoever uses them gets them whole."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name not in _DEFERRED:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def _import() -> None:
    with _IMPORT_LOCK:
        if "great_expectations.expectations" in sys.modules:
            return
        # GX imports requests, which tries urllib3's SOCKS proxy support and warns that PySocks is missing: nothing
        # here goes through a proxy (GX runs offline), and the warning would reach `mdp`'s stderr from the thread
        warnings.filterwarnings("ignore", message="SOCKS support in urllib3 requires")
        deferred = _Deferred()
        sys.meta_path.insert(0, deferred)
        try:
            import great_expectations
            import great_expectations.execution_engine.pandas_execution_engine as engine
            import great_expectations.expectations  # noqa: F401
        finally:
            sys.meta_path.remove(deferred)

        # GX fingerprints every pandas batch it reads (pandas' hash of every row, then md5) for a batch marker
        # nothing here reads: half of a validation of an hour's trades. A threshold of 0 bytes skips it.
        engine.HASH_THRESHOLD = 0


def preload() -> None:
    """Import GX on a thread of its own, now: a run whose checks come after polars work (which leaves the
    interpreter free) pays its seconds of import beside that work instead of after it. ``validate`` waits for it
    (Python's import lock), or imports GX itself if this was never called."""
    threading.Thread(target=_import, name="mdp-gx-import", daemon=True).start()


@functools.lru_cache(maxsize=4)
def _context(docs: str | None) -> AbstractDataContext:
    """One ephemeral context per process and docs folder. With ``docs`` (a local folder), validation results are
    kept in ``docs/validations`` and the Data Docs site is ``docs/data_docs``; without, results stay in memory."""
    _import()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    if docs is not None:
        root = Path(docs)
        config.stores["validation_results_store"] = {
            "class_name": "ValidationResultsStore",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(root / "validations")},
        }
        config.data_docs_sites = {
            _SITE: {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(root / "data_docs"),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.data_sources.add_pandas(_SOURCE)
    return context


def _pandas(frame: pl.DataFrame, rules: Sequence[Rule]) -> Any:
    """What GX reads: the columns the rules name (GX's pandas conversion and metrics cost per column; the example
    rows are taken from the suite's own frame), as numpy-backed pandas (GX's pandas metrics are many times slower
    on Arrow-backed columns). Decimals become floats: the rules GX applies to them are signs and ranges, which a
    float keeps; the exact comparisons are computed columns. Nested columns are left out (their rules are computed
    columns too)."""
    named = set(_named_columns(rules, frame.columns))
    frame = frame.select([c for c in frame.columns if c in named]) if named else frame
    nested = [c for c, t in frame.schema.items() if isinstance(t, pl.List | pl.Struct | pl.Array)]
    floats = [c for c, t in frame.schema.items() if isinstance(t, pl.Decimal)]
    return frame.drop(nested).with_columns(pl.col(floats).cast(pl.Float64)).to_pandas()


def _named_columns(rules: Sequence[Rule], columns: Sequence[str]) -> list[str]:
    """The columns the rules read: their ``column`` or ``column_list``, and the names in a row condition."""
    named: list[str] = []
    for rule in rules:
        kwargs = rule.kwargs
        named += [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list", ()))
        if "row_condition" in kwargs:
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", kwargs["row_condition"]))
            named += [c for c in columns if c in words]
    return named


def _batch_definition(context: AbstractDataContext, name: str) -> Any:
    source: Any = context.data_sources.get(_SOURCE)  # the pandas source added with the context
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        return asset.get_batch_definition("partition")
    except KeyError:
        return asset.add_batch_definition_whole_dataframe("partition")


#: (context, suite name) -> (its rules, the validation definition made for them): a suite is added to the
#: context again only when its rules change (adding one costs more than validating a small partition)
_DEFINITIONS: dict[tuple[int, str], tuple[tuple[Rule, ...], Any]] = {}


def _definition(context: AbstractDataContext, suite: Suite) -> Any:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    key = (id(context), suite.name)
    known = _DEFINITIONS.get(key)
    if known is not None and known[0] == suite.rules:
        return known[1]
    expectations = [
        getattr(gxe, rule.expectation)(**rule.kwargs, description=rule.what, meta={"rule": i})
        for i, rule in enumerate(suite.rules)
    ]
    gx_suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite.name, expectations=expectations))
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=_batch_definition(context, suite.name), suite=gx_suite)
    )
    _DEFINITIONS[key] = (suite.rules, definition)
    return definition


def _run(
    context: AbstractDataContext, suite: Suite, run_name: str, run_time: datetime, detail: str
) -> tuple[ExpectationSuiteValidationResult, Any | None]:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    definition = _definition(context, suite)
    run_id = RunIdentifier(run_name=run_name, run_time=run_time)
    result = definition.run(
        batch_parameters={"dataframe": _pandas(suite.checked_frame(), suite.rules)},
        result_format={"result_format": detail, "partial_unexpected_count": EXAMPLES},
        run_id=run_id,
    )
    # the key the result was stored under: the validation definition names a whole-dataframe batch after its
    # source and asset (checked: a key that is not there has no page)
    stored = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
        run_id=run_id,
        batch_identifier=f"{_SOURCE}-{suite.name}",
    )
    return result, stored if context.validation_results_store.has_key(stored) else None


def _text(value: object) -> str:
    return "null" if value is None else str(value)


def _examples(suite: Suite, result: dict[str, Any]) -> list[dict[str, str]]:
    """The failing rows' shown columns (from the suite's own frame: exact decimals, readable times), else the
    failing values GX lists."""
    index = result.get("partial_unexpected_index_list") or []
    if index and all(isinstance(i, int) for i in index):
        shown = list(suite.shown) or suite.frame.columns
        rows = suite.frame[index[:EXAMPLES]].select(shown).rows(named=True)
        return [{k: _text(v) for k, v in row.items()} for row in rows]
    values = result.get("partial_unexpected_list") or []
    if values:
        return [{"value": _text(v)} for v in values[:EXAMPLES]]
    if "observed_value" in result:
        return [{"observed": _text(result["observed_value"])}]
    return []


def _outcomes(suite: Suite, result: ExpectationSuiteValidationResult) -> list[Outcome]:
    found: list[tuple[int, Outcome]] = []
    for r in result.results:
        config = r.expectation_config
        assert config is not None  # a suite's result names each of its expectations
        i = int(config.meta["rule"])
        rule = suite.rules[i]
        error = None
        if r.exception_info and r.exception_info.get("raised_exception"):
            error = str(r.exception_info.get("exception_message") or "error").splitlines()[0]
        got = r.result or {}
        failing = got.get("unexpected_count")
        outcome = Outcome(
            suite=suite.name,
            rule=rule.what,
            expectation=rule.expectation,
            passed=bool(r.success),
            failing=int(failing) if failing is not None else (0 if r.success else None),
            checked=got.get("element_count"),
            rows=suite.rows,
            examples=[] if r.success else _examples(suite, got),
            error=error,
        )
        found.append((i, outcome))
    return [o for _, o in sorted(found, key=lambda x: x[0])]


def validate(suites: Sequence[Suite], partition: str, docs: str | None = None, *, pages: bool | None = None) -> Report:
    """Run ``suites`` in order on their frames, as the partition ``partition`` (the name of the run in the
    stored results). ``docs``: a local folder where the results are kept and the Data Docs site is rebuilt
    for them (``<docs>/data_docs/index.html``). ``pages``: Data Docs pages for every suite (True), for none
    (False), or only for the suites that failed (None: rendering a page costs more than the validation itself,
    and a passing hour's page says little the check's metadata does not)."""
    started = time.perf_counter()
    context = _context(docs)
    run_time = datetime.now(UTC)
    outcomes: list[Outcome] = []
    skipped: list[str] = []
    ids: dict[str, Any] = {}
    blocked = False
    for suite in suites:
        if blocked:
            skipped.append(suite.name)
            continue
        # GX's BASIC result (counts, a few failing values) costs a third less than SUMMARY, which adds where the
        # failing rows are (the example rows shown): a suite that fails is validated again for them, and its stored
        # result is then the detailed one (the same run and suite: the same key)
        result, stored = _run(context, suite, partition, run_time, "BASIC")
        if not result.success:
            result, stored = _run(context, suite, partition, run_time, "SUMMARY")
        if stored is not None and (pages or (pages is None and not result.success)):
            ids[suite.name] = stored
        outcomes += _outcomes(suite, result)
        blocked = suite.gate and not result.success
    urls: dict[str, str] = {}
    index = None
    if docs is not None and ids:
        built = context.build_data_docs(site_names=[_SITE], resource_identifiers=list(ids.values())).get(_SITE)
        index = _url_path(built) if built else None
        for name, vid in ids.items():
            (site,) = context.get_docs_sites_urls(resource_identifier=vid, site_name=_SITE)
            url = site.get("site_url")
            if url:
                urls[name] = _url_path(url)
    return Report(partition, outcomes, skipped, urls, index, time.perf_counter() - started)


def _url_path(url: str) -> str:
    from urllib.parse import unquote

    return unquote(url.removeprefix("file://"))
