"""AsyncAPI 3.0 for an app's consumers: the document, and an HTML page that renders it offline."""

from __future__ import annotations

from .document import build_document, consumer_routes
from .page import render_page

__all__ = ["build_document", "consumer_routes", "render_page"]
