"""The little markup docstrings use, as HTML: everything else is escaped.

Blocks: paragraphs split on blank lines, and bullet lists whose items start with ``- ``. Inline:
``code`` (double or single backticks), **strong**, *emphasis*, and [text](url) links for http(s)
URLs only. No HTML passes through: a ``<script>`` in a description comes out as text.
"""

from __future__ import annotations

import html
import re

__all__ = ["render_blocks", "render_inline"]

_INLINE = re.compile(
    r"``(?P<code2>.+?)``"
    r"|`(?P<code1>[^`]+)`"
    r"|\*\*(?P<strong>[^*]+?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^*\s](?:[^*]*[^*\s])?)\*(?![\w*])"
    r"|\[(?P<text>[^\]]+)\]\((?P<url>https?://[^\s()<>\"']+)\)",
    re.DOTALL,
)


def render_inline(text: str) -> str:
    """``text`` as escaped HTML with its inline markup rendered."""
    out: list[str] = []
    at = 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[at : match.start()]))
        at = match.end()
        group = match.lastgroup
        if group in ("code2", "code1"):
            out.append(f"<code>{html.escape(match[group] or '')}</code>")
        elif group == "strong":
            out.append(f"<strong>{render_inline(match['strong'])}</strong>")
        elif group == "em":
            out.append(f"<em>{render_inline(match['em'])}</em>")
        else:
            url = html.escape(match["url"], quote=True)
            out.append(
                f'<a href="{url}" rel="noopener noreferrer">{render_inline(match["text"])}</a>'
            )
    out.append(html.escape(text[at:]))
    return "".join(out)


def render_blocks(text: str | None) -> str:
    """``text`` as paragraphs and bullet lists of escaped HTML (empty for no text)."""
    if not text or not text.strip():
        return ""
    out: list[str] = []
    for block in re.split(r"\n[ \t]*\n", text.strip()):
        paragraph: list[str] = []
        items: list[list[str]] = []
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("- "):
                if paragraph and not items:
                    out.append(_paragraph(paragraph))
                    paragraph = []
                items.append([stripped[2:]])
            elif items:
                items[-1].append(stripped)
            elif stripped:
                paragraph.append(stripped)
        if paragraph:
            out.append(_paragraph(paragraph))
        if items:
            rows = "".join(f"<li>{render_inline(' '.join(item))}</li>" for item in items)
            out.append(f"<ul>{rows}</ul>")
    return "".join(out)


def _paragraph(lines: list[str]) -> str:
    return f"<p>{render_inline(' '.join(lines))}</p>"
