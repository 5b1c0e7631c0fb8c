"""mdplatform: collect crypto market data, land it raw, materialize it."""

__version__ = "0.1.0"
__all__ = ["__version__"]
