"""Running hour partitions in this process (``mdp materialize``, ``mdp backfill``), recorded in DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdplatform._signals import stop_signals

__all__ = ["HourRunner", "ensure_dagster_home"]

_REPO = Path(__file__).resolve().parents[1]
#: the run's events still go to DAGSTER_HOME; the console only shows warnings (the progress bar is the output)
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def ensure_dagster_home() -> str:
    """DAGSTER_HOME, defaulting to ./.dagster with this repo's dagster.yaml (telemetry off)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(Path(".dagster").resolve())
        os.environ["DAGSTER_HOME"] = home
    Path(home).mkdir(parents=True, exist_ok=True)
    config = Path(home) / "dagster.yaml"
    if not config.exists():
        if (_REPO / "dagster.yaml").exists():
            shutil.copyfile(_REPO / "dagster.yaml", config)
        else:
            config.write_text("telemetry:\n  enabled: false\n")
    return home


@dataclass
class HourRunner:
    """Runs ``mdp_hourly`` (trades, coverage, candles) or ``mdp_candles`` for hours, one Dagster run per hour, in
    order, on the partitions of this lake. ``failed``: partition keys of failed runs; ``failed_checks``: checks
    that did not pass; ``metadata``: the materializations' metadata summed where numeric (late trades, rejects)."""

    lake: str
    warehouse: str
    progress: bool = True
    failed: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    #: hours run (whatever their outcome), and the signal that stopped the runner between two hours, if any
    done: int = 0
    stopped_by: str | None = None

    def run(self, hours: list[int], *, candles_only: bool = False) -> None:
        if self.stopped_by:
            return
        os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
        ensure_dagster_home()
        stop, received = threading.Event(), []
        # the runs go on a worker thread: Dagster turns a signal into a failure of the running step when it
        # executes on the main thread; here the main thread only waits, takes the signal, and the worker stops
        # after the hour it is in
        with stop_signals(stop, received), ThreadPoolExecutor(1, thread_name_prefix="mdp-hours") as pool:
            work = pool.submit(self._run_hours, hours, candles_only, stop)
            # wake up now and then: the kernel may deliver the signal to the worker thread, and a main thread
            # blocked in an untimed wait would run the Python handler only once every hour is done
            while not wait([work], timeout=0.1).done:
                pass
            work.result()
        if stop.is_set():
            self.stopped_by = received[0] if received else "a signal"

    def _run_hours(self, hours: list[int], candles_only: bool, stop: threading.Event) -> None:
        from dagster import DagsterInstance
        from tqdm import tqdm  # type: ignore[import-untyped]

        from .partitions import hour_key

        job = self._job(candles_only)
        with DagsterInstance.get() as instance:
            bar = tqdm(hours, unit="h", disable=not self.progress, file=sys.stderr)
            for hour in bar:
                if stop.is_set():
                    break
                key = hour_key(hour)
                bar.set_postfix_str(f"{'candles ' if candles_only else ''}{key}")
                result = job.execute_in_process(
                    partition_key=key, instance=instance, raise_on_error=False, run_config=_QUIET
                )
                self.done += 1
                if not result.success:
                    self.failed.append(key)
                for ev in result.get_asset_check_evaluations():
                    if not ev.passed:
                        self.failed_checks.append(f"{key} {ev.check_name}: {ev.description or ''}")
                for mat in result.get_asset_materialization_events():
                    for name in ("late_trades", "rejects"):
                        value = getattr(mat.materialization.metadata.get(name), "value", 0) or 0
                        self.totals[name] = self.totals.get(name, 0) + int(value)

    def _job(self, candles_only: bool) -> Any:
        from ._jobs import definitions_for
        from ._resources import MdpResource
        from .partitions import hourly_partitions, mdp_start

        # the partitions of this lake (the definitions loaded for $MDP_LAKE may start elsewhere)
        defs = definitions_for(
            hourly_partitions(mdp_start(self.lake)), {"mdp": MdpResource(lake=self.lake, warehouse=self.warehouse)}
        )
        return defs.resolve_job_def("mdp_candles" if candles_only else "mdp_hourly")
