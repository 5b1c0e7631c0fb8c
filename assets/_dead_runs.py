"""Runs whose process is gone: a run executed in a process (``mdp materialize``, ``mdp backfill``) that was killed
(kill -9, OOM, a host reboot) stays STARTED in the instance and keeps its ``mdp_warehouse`` pool slot, so every
later run would wait for that slot forever. Each run executed in process is tagged with the process that runs it
(``process_tag``); ``free_dead_runs`` finds the runs of this host whose process is gone, marks them failed with a
message naming the process, and frees their concurrency slots. Runs of another host are left alone: whether their
process lives cannot be known from here. ``wait_for_pool`` waits for a slot a live run holds, saying whose, and
gives up when the process is told to stop (Dagster's own wait for a slot heeds no signal)."""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["PROCESS_TAG", "free_dead_runs", "process_tag", "wait_for_pool"]

#: "host boot pid start": the process running the run, as ``process_tag`` names it
PROCESS_TAG = "mdp/process"
_ACTIVE = ("NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "-"


def _start_ticks(pid: int) -> str | None:
    """When the process started (clock ticks since boot, /proc/PID/stat field 22): with the pid, it tells a live
    process from a new one that reused the pid. None: no such process; "-": no /proc to ask."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "-"
    return stat.rsplit(")", 1)[1].split()[19]  # the command may hold spaces and parentheses: split after it


def process_tag(pid: int | None = None) -> str:
    """This process (or ``pid``) as "host boot-id pid start-ticks"."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()} {_boot_id()} {pid} {_start_ticks(pid) or '-'}"


def _gone(tag: str) -> bool:
    """Whether the process the tag names is known to be gone (False when it may live, or runs elsewhere)."""
    try:
        host, boot, pid_text, ticks = tag.split(" ")
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    if boot != _boot_id():
        return True  # the host rebooted since: no process of before lives
    now = _start_ticks(pid)
    if now is None:
        return True
    if now != "-" and ticks != "-":
        return now != ticks  # the pid was reused by another process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def free_dead_runs(instance: Any) -> list[str]:
    """Mark failed the runs of this instance whose process (``PROCESS_TAG``) is gone and free their concurrency
    slots; also free slots still claimed by runs that already ended. Returns one message per run, naming it."""
    from dagster import DagsterRunStatus, RunsFilter

    storage = instance.event_log_storage
    slots = storage.supports_global_concurrency_limits  # pools: the SQLite and PostgreSQL storages
    messages: list[str] = []
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus[s] for s in _ACTIVE])):
        tag = run.tags.get(PROCESS_TAG)
        if tag is None or not _gone(tag):
            continue
        _host, _boot, pid, _ticks = tag.split(" ")
        hours = _hours(run.tags)
        message = (
            f"run {run.run_id} ({run.job_name}{hours}) was left {run.status.value} by process {pid}, which is gone "
            "(killed?): marked failed, its concurrency slots freed (failed_hours_sensor retries failed hours)"
        )
        instance.report_run_failed(run, message)
        if slots:
            storage.free_concurrency_slots_for_run(run.run_id)
        messages.append(message)
    if slots:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
                messages.append(f"run {run_id} had ended but still held a concurrency slot: freed")
    return messages


def _hours(tags: dict[str, str]) -> str:
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start is None:
        return f", hour {tags['dagster/partition']}" if "dagster/partition" in tags else ""
    return f", hours {start}" if start == end else f", hours {start} .. {end}"


def wait_for_pool(instance: Any, stop: threading.Event, pool: str = "mdp_warehouse", poll_s: float = 0.2) -> bool:
    """Wait until ``pool`` has a free slot (another process's run may hold it: `dagster dev`, a second
    `mdp materialize`), saying once on stderr which run holds it; False when ``stop`` was set meanwhile. A slot can
    still be taken between this check and the run's claim: the run then waits in Dagster as before."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return not stop.is_set()
    said = False
    while not stop.is_set():
        info = storage.get_concurrency_info(pool)
        limit = info.limit if info.limit is not None else info.slot_count
        if not limit or len(info.claimed_slots) < limit:
            return True
        if not said:
            holders = ", ".join(sorted({slot.run_id for slot in info.claimed_slots}))
            print(f"waiting for the {pool} pool: its {limit} slot(s) are held by run {holders}", file=sys.stderr)
            said = True
        stop.wait(poll_s)
    return False
