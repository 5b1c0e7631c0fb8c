"""What the sessions of books kept from WebSocket snapshots (OKX, HTX) need of their exchange: to resubscribe a
stream whose book broke, which brings a fresh snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..contract import Subscription

__all__ = ["Resubscribing"]


class Resubscribing(Protocol):
    @property
    def id(self) -> str: ...

    def subscribe_messages(self, subs: Sequence[Subscription]) -> list[str]: ...

    def unsubscribe_messages(self, subs: Sequence[Subscription]) -> list[str]: ...
