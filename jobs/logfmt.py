"""key=value log lines, so each transition can be grepped and parsed without a JSON logger."""

from __future__ import annotations

import logging

log = logging.getLogger("jobs")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        value = f"{value:.3f}".rstrip("0").rstrip(".")
    text = str(value)
    if text == "" or any(ch in text for ch in ' "=\n'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def kv(event: str, **fields: object) -> str:
    parts = [f"event={event}"]
    parts.extend(f"{key}={_fmt(value)}" for key, value in fields.items() if value is not None)
    return " ".join(parts)


def log_event(event: str, level: int = logging.INFO, **fields: object) -> None:
    log.log(level, kv(event, **fields))


def ensure_logging() -> None:
    """A process started by spawn or subprocess has no handlers: give it plain stderr logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
