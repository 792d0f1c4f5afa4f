"""The seed's background jobs as Celery tasks whose life is streamed to their watchers
(``taskcast.jobs``): ``celery -A workers call workers.jobs.run_job -k '{"type": "analyze",
"content": "hello world"}'`` starts one; its id is the job id."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task
from pydantic import TypeAdapter

from showcase.jobs import BackgroundJobsConsumer, JobDone, JobDonePayload, ShowcaseJobWatcher
from showcase.messages import MessageText
from taskcast import SyncPublisher
from taskcast.jobs import StreamedTask
from workers.broker import RetryingTask
from workers.tasks import RETRY, _check, resources

STEPS = 4
TRANSLATIONS = {
    "hello": "hola",
    "world": "mundo",
    "good morning": "buenos días",
    "thank you": "gracias",
}


def result_text(kind: str, content: str) -> str:
    """The seed's result for a job of ``kind`` (an unknown kind runs ``default``)."""
    if kind == "translate":
        done = TRANSLATIONS.get(content.lower(), f"[TRANSLATED: {content}]")
        return f"🌍 Translated: '{content}' → '{done}'"
    if kind == "analyze":
        vowels = sum(c in "aeiou" for c in content.lower())
        return (
            f"📊 Analysis of '{content}':\n• Characters: {len(content)}\n"
            f"• Words: {len(content.split())}\n• Vowels: {vowels}"
        )
    if kind == "generate":
        return (
            f"🤖 AI Response to '{content}':\nThat's an interesting point... Based on my "
            "analysis, I would suggest exploring this topic further."
        )
    return f"✅ Processed: {content.upper()}"


class ShowcaseJob(StreamedTask, RetryingTask):  # type: ignore[misc]
    """A streamed job of this app: its events go to ``/ws/jobs/{job_id}``'s watchers."""

    watcher = ShowcaseJobWatcher

    def publisher(self) -> SyncPublisher:
        return resources(self.app).publisher


_TEXT: TypeAdapter[str] = TypeAdapter(MessageText)


@shared_task(bind=True, base=ShowcaseJob, name="workers.jobs.run_job", **RETRY)
def run_job(
    self: ShowcaseJob, type: Any = "default", content: Any = "", reply_to: Any = None
) -> str:
    """The seed's job: works ``TASKCAST_JOB_DELAY`` seconds in four steps, reporting each, and
    returns the seed's text; with ``reply_to`` (a socket's address) sends it there too."""
    kind = type if isinstance(type, str) else "default"
    text = _check(_TEXT, content, "content")
    delay = resources(self.app).settings.job_delay
    for step in range(1, STEPS + 1):
        time.sleep(delay / STEPS)
        self.progress(step, STEPS, f"step {step} of {STEPS}")
    result = result_text(kind, text)
    if isinstance(reply_to, str):
        done = JobDone(payload=JobDonePayload(job_id=self.request.id, message=result))
        self.publisher().publish(
            BackgroundJobsConsumer, done, to={"connection": reply_to}, key=self.request.id
        )
    return result
