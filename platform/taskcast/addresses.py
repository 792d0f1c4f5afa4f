"""Group names from the connection: a consumer's ``groups`` may be templates, filled when a
socket connects and when a publisher addresses the consumer.

    groups = ("notifications", "user:{user}")      # everyone; and one signed-in user
    groups = ("room:{room_name}",)                 # the room of the URL /ws/room/{room_name}
    groups = ("jobs:{connection}",)                # this one socket (its ``address``)

A placeholder is a path parameter of the consumer's route, ``user`` (the identity the
authenticator gave the socket) or ``connection`` (the socket's own address). Values a client
controls are checked against ``AddressRules`` before anything is joined or sent. A socket with no
identity does not join the groups that name ``user``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .exceptions import DefinitionError, InvalidAddress

__all__ = ["AddressRules", "GroupTemplate", "InvalidAddress", "templates_of"]

USER = "user"
CONNECTION = "connection"


NAME_PUNCTUATION = "_.~-"
# Letters that show nothing (Hangul fillers): a name of them alone would be blank on screen.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def _name_char(c: str) -> bool:
    return unicodedata.category(c)[0] in "LMN" or c in NAME_PUNCTUATION


def _visible_alnum(c: str) -> bool:
    return unicodedata.category(c)[0] in "LN" and c not in _BLANK_LETTERS


@dataclass(frozen=True, slots=True)
class AddressRules:
    """What a value filled into a group name may be: at most ``max_chars`` characters; by
    default letters, marks and digits of any script and ``_ . ~ -``, with at least one letter or
    digit one can see (so no name of dots, which URLs collapse); with ``pattern``, every
    character matching that regular expression instead."""

    pattern: str | None = None
    max_chars: int = 64

    def check(self, field: str, value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a path parameter converted by its route ({id:int})
        if not isinstance(value, str) or not value:
            raise InvalidAddress(f"{field} must be a non-empty string")
        if len(value) > self.max_chars:
            raise InvalidAddress(f"{field} is longer than {self.max_chars} characters")
        if self.pattern is None:
            if not all(map(_name_char, value)) or not any(map(_visible_alnum, value)):
                raise InvalidAddress(
                    f"{field} may only contain letters, marks and digits of any script and "
                    f"{' '.join(NAME_PUNCTUATION)}, with a letter or digit"
                )
        elif re.fullmatch(self.pattern, value) is None or not value.isprintable():
            raise InvalidAddress(f"{field} does not match the pattern for names")
        return value


@dataclass(frozen=True, slots=True)
class GroupTemplate:
    """One entry of a consumer's ``groups``: a constant, or a template with ``fields``."""

    text: str
    fields: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> GroupTemplate:
        try:
            parts = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise DefinitionError(f"group {text!r}: {exc}") from None
        fields = set()
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if not name.isidentifier() or spec or conversion:
                raise DefinitionError(f"group {text!r}: a placeholder is a plain {{name}}")
            fields.add(name)
        return cls(text, frozenset(fields))

    def fill(self, values: Mapping[str, str]) -> str:
        return self.text.format_map(values) if self.fields else self.text

    def matches(self, group: str, rules: AddressRules) -> bool:
        """Whether ``group`` is this template filled with values ``rules`` allow."""
        if not self.fields:
            return group == self.text
        pattern = "".join(
            re.escape(literal) + ("" if name is None else f"(?P<{name}>.+?)")
            for literal, name, _, _ in string.Formatter().parse(self.text)
        )
        found = re.fullmatch(pattern, group)
        if found is None:
            return False
        try:
            for field, value in found.groupdict().items():
                rules.check(field, value)
        except InvalidAddress:
            return False
        return True


def templates_of(groups: Iterable[str]) -> tuple[GroupTemplate, ...]:
    return tuple(GroupTemplate.parse(g) for g in groups)


def resolve(
    templates: Iterable[GroupTemplate], values: Mapping[str, str], rules: AddressRules
) -> tuple[str, ...]:
    """The groups a socket joins: every template whose fields it has values for (a socket with
    no ``user`` skips the user's groups), each value used checked by ``rules``."""
    templates = tuple(templates)
    used = set().union(*(t.fields for t in templates))
    checked = {f: rules.check(f, value) for f, value in values.items() if f in used}
    return tuple(t.fill(checked) for t in templates if t.fields <= checked.keys())


def addressed(
    templates: Iterable[GroupTemplate], values: Mapping[str, str], rules: AddressRules
) -> tuple[str, ...]:
    """The groups a publish reaches: those whose placeholders are exactly the fields given (no
    values: the constant groups, i.e. everyone), each value checked by ``rules``."""
    checked = {field: rules.check(field, value) for field, value in values.items()}
    return tuple(t.fill(checked) for t in templates if t.fields == checked.keys())


_ROUTE_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def check_route(owner: str, templates: Iterable[GroupTemplate], route: str) -> None:
    """A ``DefinitionError`` when a template names a value the route cannot give (a group that
    no socket would ever join, silently), or when the route itself has a ``user`` or
    ``connection`` parameter (a client would choose who it is, or whose socket it is)."""
    params = set(_ROUTE_PARAM.findall(route))
    if taken := sorted(params & {USER, CONNECTION}):
        raise DefinitionError(
            f"{owner} at {route!r}: {', '.join(taken)} may not be a path parameter (the "
            "authenticator names the user; the server, the connection)"
        )
    known = {*params, USER, CONNECTION}
    for template in templates:
        if unknown := sorted(template.fields - known):
            raise DefinitionError(
                f"{owner} group {template.text!r} needs {', '.join(unknown)}, which {route!r} "
                f"does not give (a path parameter, {USER} or {CONNECTION})"
            )
