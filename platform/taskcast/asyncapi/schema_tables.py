"""JSON Schemas as HTML tables: one row per property with its type, whether it is required, its
constraints and its description; a ``$ref`` to ``#/components/schemas/X`` links to X's anchor."""

from __future__ import annotations

import html
import json
from typing import Any

from .markup import render_blocks

__all__ = ["property_table", "schema_anchor", "schema_name", "type_html"]

Json = dict[str, Any]

_SCHEMAS = "#/components/schemas/"
_MAX_NESTING = 4
_CONSTRAINTS = (
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)


def schema_anchor(name: str) -> str:
    """The id of a schema's section on the page."""
    return f"schema-{name}"


def schema_name(schema: Json) -> str | None:
    """The component a ``$ref`` names, if it names one under ``components/schemas``."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_SCHEMAS):
        return ref[len(_SCHEMAS) :]
    return None


def _e(value: object) -> str:
    return html.escape(str(value))


def _literal(value: object) -> str:
    return f"<code>{_e(json.dumps(value, ensure_ascii=False))}</code>"


def type_html(schema: Json) -> str:
    """``schema``'s type as HTML: formats, consts, enums, array items, unions, links."""
    if (name := schema_name(schema)) is not None:
        return f'<a href="#{_e(schema_anchor(name))}"><code>{_e(name)}</code></a>'
    for key, joiner in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " &amp; ")):
        if key in schema:
            return joiner.join(_grouped(option) for option in schema[key])
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    parts = []
    for each in kinds:
        if each == "array":
            items = schema.get("items")
            parts.append("array of " + _grouped(items) if isinstance(items, dict) else "array")
        elif each == "object" and isinstance(schema.get("additionalProperties"), dict):
            parts.append("object of " + _grouped(schema["additionalProperties"]))
        else:
            text = _e(each)
            if "format" in schema:
                text += f" ({_e(schema['format'])})"
            parts.append(text)
    text = " | ".join(parts) or "any JSON"
    if "const" in schema:
        text += " = " + _literal(schema["const"])
    elif "enum" in schema:
        text += ", one of " + ", ".join(_literal(v) for v in schema["enum"])
    return text


def _grouped(schema: Json) -> str:
    text = type_html(schema)
    return f"({text})" if any(k in schema for k in ("anyOf", "oneOf", "allOf")) else text


def _constraints(schema: Json, prefix: str = "") -> list[str]:
    found = [
        f"<code>{_e(prefix)}{key}: {_e(json.dumps(schema[key], ensure_ascii=False))}</code>"
        for key in _CONSTRAINTS
        if key in schema
    ]
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _constraints(option, prefix)
    items = schema.get("items")
    if isinstance(items, dict):
        found += _constraints(items, prefix + "items ")
    return found


def _notes(schema: Json) -> str:
    notes = _constraints(schema)
    if "default" in schema and not ("const" in schema and schema["const"] == schema["default"]):
        notes.append(f"default {_literal(schema['default'])}")
    return "<br>".join(notes)


def property_table(schema: Json, *, skip: tuple[str, ...] = ()) -> str:
    """A table of ``schema``'s properties (nested inline objects as ``a.b`` rows); empty when
    it has none."""
    rows = _rows(schema, "", skip, 0)
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("Name", "Type", "Required", "Constraints", "About"))
    return (
        f'<div class="table"><table class="props"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _rows(schema: Json, prefix: str, skip: tuple[str, ...], depth: int) -> list[str]:
    properties: Json = schema.get("properties", {})
    required = set(schema.get("required", []))
    rows = []
    for name, sub in properties.items():
        if name in skip or not isinstance(sub, dict):
            continue
        full = f"{prefix}{name}"
        needed = "required" if name in required else "optional"
        rows.append(
            f'<tr><td data-label="Name"><code>{_e(full)}</code></td>'
            f'<td data-label="Type">{type_html(sub)}</td>'
            f'<td data-label="Required" class="{needed}">{needed}</td>'
            f'<td data-label="Constraints">{_notes(sub)}</td>'
            f'<td data-label="About">{render_blocks(sub.get("description"))}</td></tr>'
        )
        if depth < _MAX_NESTING:  # inline objects (not $refs: those link to their own table)
            if "properties" in sub:
                rows += _rows(sub, f"{full}.", (), depth + 1)
            items = sub.get("items")
            if isinstance(items, dict) and "properties" in items:
                rows += _rows(items, f"{full}[].", (), depth + 1)
    return rows
