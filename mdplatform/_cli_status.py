"""``mdp status``: the running ingestor's health as a table, from its ``/health`` endpoint or its status file."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import click

__all__ = ["render", "status"]

#: a status file older than this many report intervals (plus a margin) is not the word of a running ingestor
_STALE_REPORTS = 3
_STALE_MARGIN_S = 5.0
_COLUMNS = ("CONNECTION", "STATE", "MESSAGES", "MSG/S", "LAST MSG", "GAPS", "RECONNECTS", "BOOKS")


def _default_url() -> str:
    from .collector import DEFAULT_STATUS_HTTP, STATUS_HTTP_ENV, status_http_address

    try:
        address = status_http_address(os.environ.get(STATUS_HTTP_ENV) or DEFAULT_STATUS_HTTP)
    except ValueError as exc:
        raise click.ClickException(f"${STATUS_HTTP_ENV}: {exc}") from None
    if address is None:
        raise click.ClickException(f"${STATUS_HTTP_ENV} is off: pass --url or --status-file")
    host, port = address
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def _from_http(url: str) -> dict[str, Any]:
    import httpx

    from .collector import LOOP_TIMEOUT_S

    target = f"{url.rstrip('/')}/health"
    try:
        reply = httpx.get(target, timeout=LOOP_TIMEOUT_S + 2)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no ingestor answers at {target} ({type(exc).__name__}: {exc or 'no reply'}): is `mdp ingest` running "
            "there? (its address: status_http in its config, or $MDP_STATUS_HTTP)"
        ) from None
    try:
        doc = reply.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "status" not in doc:
        raise click.ClickException(f"{target} answered HTTP {reply.status_code}, not an ingestor's health")
    return doc


def _from_file(path: str) -> dict[str, Any]:
    try:
        with open(path) as fh:
            doc = json.load(fh)
        health = doc["health"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"cannot read the status file {path}: {exc}") from None
    if not isinstance(health, dict) or "status" not in health:
        raise click.ClickException(f"{path} is not an ingestor's status file (no health in it)")
    written = health.get("time")
    every = float(health.get("every_s") or 10.0)
    if written:
        age = time.time() - datetime.fromisoformat(written).timestamp()
        if age > _STALE_REPORTS * every + _STALE_MARGIN_S:
            health["problems"] = [
                f"the status file was written {age:.0f}s ago (every {every:g}s while the ingestor runs): "
                "it is not running",
                *health.get("problems", []),
            ]
            if health["status"] == "healthy":
                health["status"] = "stale"
    return health


def _books(books: Mapping[str, str]) -> str:
    if not books:
        return "-"
    synced = sum(state == "synced" for state in books.values())
    others = [f"{symbol} {state}" for symbol, state in sorted(books.items()) if state != "synced"]
    return ", ".join([f"{synced}/{len(books)} synced", *others])


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s ago"


def render(health: Mapping[str, Any], source: str) -> str:
    """The health document as ``mdp status`` shows it: a line for the ingestor, a row per connection, the journal
    and lake, and the problems."""
    lines = [f"ingestor {health.get('writer', '?')} ({source}): {str(health['status']).upper()}"]
    rows = [_COLUMNS]
    for c in health.get("connections", []):
        state = c["state"] if c["ever_connected"] else f"never connected ({c['state']})"
        rows.append(
            (
                f"{c['exchange']}/{c['connection']}",
                state,
                str(c["messages_received"]),
                f"{c['msgs_per_s']:.1f}",
                _age(c["last_message_age_s"]),
                str(c["gaps"]),
                str(c["reconnects"]),
                _books(c["books"]),
            )
        )
    if len(rows) > 1:
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lake = health.get("lake", {})
    if lake:
        journal = ""
        if "journal_bytes" in lake:
            journal = (
                f"journal {lake['journal_bytes'] / 2**20:.1f} of {lake['journal_budget_bytes'] / 2**20:.0f} MiB, "
                f"{lake.get('backlog_segments', 0)} segment(s) waiting for the lake; "
            )
        lines.append(
            f"{journal}lake {lake.get('state', '?')}, {lake.get('write_errors', 0)} write error(s), "
            f"{lake.get('frames_written', 0)} of {lake.get('frames_appended', 0)} frames written"
        )
    lines += [f"problem: {p}" for p in health.get("problems", [])]
    return "\n".join(lines)


@click.command()
@click.option("--url", default=None, help="The ingestor's status address (default: $MDP_STATUS_HTTP, 127.0.0.1:9180).")
@click.option(
    "--status-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Read the ingestor's status file (`mdp ingest --status-file`) instead of asking it over HTTP.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the health document as JSON.")
def status(url: str | None, status_file: str | None, as_json: bool) -> None:
    """The running ingestor's health: state, msgs/s, last message, gaps, reconnects and book sync per connection,
    and the journal's backlog. Exits 1 when not healthy, or when no ingestor answers."""
    if url and status_file:
        raise click.UsageError("--url and --status-file: one or the other")
    if status_file:
        health, source = _from_file(status_file), status_file
    else:
        source = (url if "://" in url else f"http://{url}") if url else _default_url()
        health = _from_http(source)
    click.echo(json.dumps(health, indent=2) if as_json else render(health, source))
    if health["status"] != "healthy":
        raise click.exceptions.Exit(1)
