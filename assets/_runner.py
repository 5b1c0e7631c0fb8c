"""Running hour partitions in this process (``mdp materialize``, ``mdp backfill``), recorded in DAGSTER_HOME."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdplatform._gc import fewer_collections
from mdplatform._signals import stop_signals
from mdplatform.transforms import HOUR_NS

from ._dead_runs import PROCESS_TAG, free_dead_runs, process_tag, wait_for_pool
from ._sinks import cancel_sink_loads

__all__ = ["HourRunner", "ensure_dagster_home"]

_REPO = Path(__file__).resolve().parents[1]
#: how long after a stop signal a sink load may still run before it is cancelled (seconds)
_STOP_GRACE_S = 0.5


def _console() -> dict[str, Any]:
    """The runs' console logging. Their events still go to DAGSTER_HOME; the console shows nothing of Dagster's log
    but with `mdp -v`: the progress bar is the output, the runner reports failed runs (with their first error) and
    failed checks itself, and a signal's stop is a failed step that is no error."""
    verbose = logging.getLogger().getEffectiveLevel() < logging.WARNING
    return {"loggers": {"console": {"config": {"log_level": "WARNING" if verbose else "CRITICAL"}}}}


def _instance(home: str) -> Any:
    """The Dagster instance of DAGSTER_HOME; when it keeps Dagster's default SQLite storage, with the event log that
    keeps its connections (``_event_log``): a run over a range of hours stores a dozen events an hour, which the
    stock storage opens a connection and syncs to disk for, each. Other storage (PostgreSQL) is used as configured."""
    import yaml
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    config = Path(home) / "dagster.yaml"
    settings = (yaml.safe_load(config.read_text()) if config.exists() else None) or {}
    if any(key in settings for key in ("storage", "event_log_storage", "run_storage", "instance_class")):
        return DagsterInstance.get()
    pooled = {
        "event_log_storage": {
            "module": "assets._event_log",
            "class": "PooledSqliteEventLogStorage",
            "config": {"base_dir": str(Path(home) / "history" / "runs")},
        }
    }
    return DagsterInstance.from_ref(InstanceRef.from_dir(home, overrides=pooled))


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


def _contiguous(hours: list[int], most: int) -> list[list[int]]:
    """``hours`` (sorted, distinct) as runs of consecutive hours of at most ``most`` each."""
    out: list[list[int]] = []
    for hour in hours:
        if out and hour == out[-1][-1] + HOUR_NS and len(out[-1]) < most:
            out[-1].append(hour)
        else:
            out.append([hour])
    return out


@dataclass
class HourRunner:
    """Runs ``mdp_hourly`` (trades, coverage, candles, books) or ``mdp_candles`` over hours of this lake, recorded in
    DAGSTER_HOME. Consecutive hours go as one Dagster run over their partition range (the assets loop over its
    hours, reading each raw file once), at most ``run_hours`` per run so a stop or a failure costs little.
    ``failed``: the partition keys of failed runs' hours; ``failed_checks``: checks that did not pass;
    ``totals``: late trades and rejects, summed over the hours' materializations (each carries its hour's).

    A signal stops the run between two hours of its first step (trades and coverage); the hours that step wrote
    are then finished (candles, books) in a run of their own, so every hour run is whole and none after it is
    touched."""

    lake: str
    warehouse: str
    progress: bool = True
    #: hours per Dagster run: a week. A run costs seconds whatever its hours (Dagster's bookkeeping, a validation
    #: per check), an hour 0.05 s to seconds: with a day per run, a month at 5% of the test day's trades took 42 s
    #: per million trades, 14 times the reference. A stop between hours still comes within an hour of the first
    #: step; during the later steps (candles, checks) it waits for the run's end; the checks validate a run's hours
    #: chunk by chunk (``_checks``), so its memory does not grow with them
    run_hours: int = 168
    failed: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    #: check evaluations that passed (one per check and run)
    checks_passed: int = 0
    #: the first error of each failed run's failed steps ("step: Error: message")
    errors: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    #: hours run (whatever their outcome), and the signal that stopped the runner between two hours, if any
    done: int = 0
    stopped_by: str | None = None

    def run(self, hours: list[int], *, candles_only: bool = False) -> None:
        if self.stopped_by or not hours:
            return
        os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
        # one "planned" event per asset and run instead of one per asset and hour (Dagster's switch): a run over a
        # range stores a third fewer events; a failed run's hours then show as not materialized, not as failed
        # (this process reports failures itself)
        os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
        ensure_dagster_home()
        stop, received = threading.Event(), list[str]()
        with fewer_collections():  # a batch of hours (``mdplatform._gc``)
            self._run_in_worker(hours, candles_only, stop, received)
        if stop.is_set():
            self.stopped_by = received[0] if received else "a signal"

    def _run_in_worker(self, hours: list[int], candles_only: bool, stop: threading.Event, received: list[str]) -> None:
        # the runs go on a worker thread: Dagster turns a signal into a failure of the running step when it
        # executes on the main thread; here the main thread only waits, takes the signal, and the worker stops
        # after the hour it is in
        with stop_signals(stop, received), ThreadPoolExecutor(1, thread_name_prefix="mdp-hours") as pool:
            work = pool.submit(self._run_hours, sorted(set(hours)), candles_only, stop)
            # wake up now and then: the kernel may deliver the signal to the worker thread, and a main thread
            # blocked in an untimed wait would run the Python handler only once every hour is done
            while not wait([work], timeout=0.1).done:
                if stop.is_set():
                    # a load still waiting (a lock held elsewhere) half a second after the signal is cancelled:
                    # its hour fails whole (nothing replaced, no lake file) instead of holding the stop back
                    cancel_sink_loads(_STOP_GRACE_S)
            work.result()

    def failure(self) -> str:
        """One line on the failed hours: how many, which, and the first error."""
        first = f"; first error: {self.errors[0]}" if self.errors else ""
        hours = ", ".join(self.failed[:10]) + (", ..." if len(self.failed) > 10 else "")
        return f"{len(self.failed)} hour(s) failed: {hours}{first} (mdp -v shows Dagster's log)"

    def _run_hours(self, hours: list[int], candles_only: bool, stop: threading.Event) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped]

        # the processes Dagster starts from this thread (a `tail` of the compute logs and its orphan watcher) inherit
        # its signal mask: with SIGINT blocked, Ctrl-C (sent to the whole foreground process group) reaches only
        # this process, which stops between hours, and not them (they printed KeyboardInterrupt tracebacks); they
        # still end on Dagster's SIGTERM. The main thread takes the signal.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

        from ._run_hooks import HOOKS
        from .partitions import hour_key

        jobs = self._jobs()
        first_step = "candles" if candles_only else "trades and coverage"
        with _instance(os.environ["DAGSTER_HOME"]) as instance:
            # a run whose process was killed keeps its pool slot: every run here would wait for it forever
            for message in free_dead_runs(instance):
                print(message, file=sys.stderr)
            bar = tqdm(total=len(hours), unit="h", disable=not self.progress, file=sys.stderr)
            written: list[int] = []

            def on_hour(what: str, hour: int) -> None:
                if what == first_step:
                    written.append(hour)
                    bar.update(1)
                    bar.set_postfix_str(f"{'candles ' if candles_only else ''}{hour_key(hour)}")

            HOOKS.stop, HOOKS.on_hour = stop, on_hour
            try:
                for run in _contiguous(hours, self.run_hours):
                    if stop.is_set():
                        break
                    if not wait_for_pool(instance, stop):
                        break  # stopped while another process's run held the pool: nothing of this run began
                    del written[:]
                    HOOKS.stoppable = first_step
                    result = self._execute(jobs["mdp_candles" if candles_only else "mdp_hourly"], run, instance)
                    if stop.is_set() and written[-1:] != run[-1:]:
                        # stopped between two hours of the first step: the hours it wrote are finished (candles,
                        # books) and none after them is touched
                        if written and not candles_only:
                            HOOKS.stoppable = None
                            self._record(self._execute(jobs["mdp_after_trades"], written, instance), written)
                        self.done += len(written)
                        break
                    self._record(result, run)
                    self.done += len(run)
            finally:
                HOOKS.stop = HOOKS.on_hour = HOOKS.stoppable = None
                bar.close()

    @staticmethod
    def _execute(job: Any, hours: list[int], instance: Any) -> Any:
        from .partitions import hour_key

        tags = {
            "dagster/asset_partition_range_start": hour_key(hours[0]),
            "dagster/asset_partition_range_end": hour_key(hours[-1]),
            PROCESS_TAG: process_tag(),  # a later run frees its slot if this process dies (``free_dead_runs``)
        }
        return job.execute_in_process(instance=instance, raise_on_error=False, run_config=_console(), tags=tags)

    def _record(self, result: Any, hours: list[int]) -> None:
        from .partitions import hour_key

        if not result.success:
            self.failed += [hour_key(h) for h in hours]
            for event in result.get_step_failure_events():
                error = event.step_failure_data.error
                while error.cause is not None:  # the asset's own exception, not Dagster's wrapper around it
                    error = error.cause
                self.errors.append(f"{event.step_key}: {error.message.strip().splitlines()[0]}")
        for ev in result.get_asset_check_evaluations():
            if not ev.passed:
                self.failed_checks.append(f"{ev.check_name}: {ev.description or ''}")
            else:
                self.checks_passed += 1
        for mat in result.get_asset_materialization_events():
            for name in ("late_trades", "rejects"):
                value = getattr(mat.materialization.metadata.get(name), "value", 0) or 0
                self.totals[name] = self.totals.get(name, 0) + int(value)

    def _jobs(self) -> dict[str, Any]:
        from ._jobs import definitions_for
        from ._resources import MdpResource
        from .partitions import hourly_partitions, mdp_start

        # the partitions of this lake (the definitions loaded for $MDP_LAKE may start elsewhere)
        defs = definitions_for(
            hourly_partitions(mdp_start(self.lake)), {"mdp": MdpResource(lake=self.lake, warehouse=self.warehouse)}
        )
        return {name: defs.resolve_job_def(name) for name in ("mdp_hourly", "mdp_candles", "mdp_after_trades")}
