"""sanic-trace: lot-trace queries over an MES warehouse, streamed with memory bounded by the batch."""

__version__ = "0.1.0"
