"""Which server: the DSN from an argument or ``$MDP_PG_DSN``, and its password kept out of every message."""

from __future__ import annotations

import os
import re

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = ["PgConfigError", "PgError", "redact_dsn", "resolve_dsn", "scrub"]

ENV_VAR = "MDP_PG_DSN"


class PgError(RuntimeError):
    """A PostgreSQL operation failed; the message never holds the DSN's password."""


class PgConfigError(PgError):
    """No DSN was given, or it cannot be parsed."""


def resolve_dsn(dsn: str | None = None) -> str:
    """``dsn`` if given, else ``$MDP_PG_DSN``; ``PgConfigError`` when neither is set."""
    value = dsn or os.environ.get(ENV_VAR)
    if not value:
        raise PgConfigError(f"no PostgreSQL DSN: pass --dsn or set {ENV_VAR} (e.g. postgresql://user@host:5432/db)")
    return value


def _params(dsn: str) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except psycopg.ProgrammingError:
        # libpq's parse error quotes the offending part of the string, which may be the password
        raise PgConfigError(
            "the PostgreSQL DSN cannot be parsed (its text is not shown: it may hold a password)"
        ) from None


def redact_dsn(dsn: str) -> str:
    """``postgresql://user@host:port/dbname``: what a log or metadata may show of a DSN (no password, ever)."""
    p = _params(dsn)
    user = f"{p['user']}@" if p.get("user") else ""
    port = f":{p['port']}" if p.get("port") else ""
    return f"postgresql://{user}{p.get('host', '')}{port}/{p.get('dbname', '')}"


def scrub(text: str, dsn: str) -> str:
    """``text`` with the DSN's password (and any ``password=``/``:pw@`` form of one) replaced by ``***``."""
    password = _params(dsn).get("password")
    if password:
        text = text.replace(password, "***")
    text = re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def database_error(dsn: str, action: str, exc: BaseException) -> PgError:
    """A ``PgError`` saying what failed where, with no secret in it (for ``raise ... from None``)."""
    return PgError(f"{action} ({redact_dsn(dsn)}) failed: {scrub(str(exc), dsn)}")
