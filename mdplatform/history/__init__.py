"""Exchange REST history: rate-limited HTTP (one limiter per host) for healing gaps from the exchange's past."""

from ._rest import RateLimit, RestClient, RestError, RestReply, RestStats

__all__ = ["RateLimit", "RestClient", "RestError", "RestReply", "RestStats"]
