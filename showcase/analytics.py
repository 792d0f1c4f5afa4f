"""What a client, or a task's caller, may send as an analytics event: a name matching
``EVENT_NAME_PATTERN`` of at most ``max_event_chars`` characters, and data of at most
``max_data_bytes`` bytes of compact JSON. The consumer and the tasks check with the same code,
so that nothing unbounded reaches the reliable stream or the counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import JsonValue, StringConstraints, TypeAdapter, ValidationError
from pydantic_core import to_json

from showcase.settings import Settings

from .messages import EVENT_NAME_PATTERN

_EVENT: TypeAdapter[str] = TypeAdapter(
    Annotated[str, StringConstraints(pattern=EVENT_NAME_PATTERN)]
)


@dataclass(frozen=True)
class AnalyticsLimits:
    max_event_chars: int = 100
    max_data_bytes: int = 4096

    @classmethod
    def of(cls, settings: Settings | None) -> AnalyticsLimits:
        """The limits in ``settings``; the defaults where there are none (an app without
        settings, in unit tests)."""
        if settings is None:
            return cls()
        return cls(settings.analytics_max_event_chars, settings.analytics_max_data_bytes)

    def event(self, name: object, field: str = "event") -> str:
        """``name`` when it is a valid event name; else a ``ValueError`` saying why."""
        if not isinstance(name, str):
            raise ValueError(f"{field} must be a string, not {type(name).__name__}")
        # The length first: it is cheap, and a long name's error should say it is too long.
        if len(name) > self.max_event_chars:
            raise ValueError(
                f"{field} is {len(name)} characters long; at most {self.max_event_chars} allowed"
            )
        try:
            return _EVENT.validate_python(name)
        except ValidationError:
            raise ValueError(
                f"{field} must be letters, digits, spaces (not first or last) and "
                "_ . , : ; / @ # + = & ? ! ~ % ' - only"
            ) from None

    def data(self, data: JsonValue, field: str = "data") -> JsonValue:
        """``data`` when its compact JSON fits the limit; else a ``ValueError`` saying so."""
        size = len(to_json(data))
        if size > self.max_data_bytes:
            raise ValueError(
                f"{field} is {size} bytes as JSON; at most {self.max_data_bytes} allowed"
            )
        return data
