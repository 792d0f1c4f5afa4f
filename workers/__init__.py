"""Celery workers and beat: the tasks that publish events into the layers.

``celery -A workers …`` finds ``app`` here. Importing builds the app and connects to nothing.
"""

from __future__ import annotations

from .app import app

__all__ = ["app"]
