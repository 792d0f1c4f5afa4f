"""Celery workers and beat: the tasks that publish events into the layers (to come)."""
