"""NEP-297 event logs: ``EVENT_JSON:{"standard":..,"version":..,"event":..,"data":..}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

PREFIX = "EVENT_JSON:"


class EventError(ValueError):
    """A log starts with EVENT_JSON: but is not a valid NEP-297 event."""


@dataclass(slots=True)
class Event:
    standard: str
    version: str
    event: str
    data: Any

    def data_json(self) -> str:
        return orjson.dumps(self.data).decode()

    def items(self) -> list[dict[str, Any]]:
        """``data`` as a list of objects (dip4 and NEP-245 use a list; some contracts one object)."""
        if isinstance(self.data, list):
            return [d for d in self.data if isinstance(d, dict)]
        if isinstance(self.data, dict):
            return [self.data]
        return []


def is_event(log: str) -> bool:
    return log.startswith(PREFIX)


def parse_event(log: str) -> Event:
    """Parse one ``EVENT_JSON:`` log; any version is accepted, missing ``data`` is allowed."""
    try:
        obj = orjson.loads(log[len(PREFIX) :])
    except orjson.JSONDecodeError as exc:
        raise EventError(f"EVENT_JSON payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EventError("EVENT_JSON payload is not an object")
    standard, event = obj.get("standard"), obj.get("event")
    if not isinstance(standard, str) or not standard or not isinstance(event, str) or not event:
        raise EventError("EVENT_JSON payload lacks a string 'standard' or 'event'")
    version = obj.get("version", "")
    return Event(standard=standard, version=str(version), event=event, data=obj.get("data"))
