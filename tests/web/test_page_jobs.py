"""The showcase page's jobs panel in Chromium, with a real worker: Run, the progress bar, the
states as they happen, the result; a reload mid-job picks the job up where it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from pydantic import SecretStr

import workers.jobs  # noqa: F401 - registers the job task on every app
from showcase.settings import Settings
from taskcast.testing import LiveServer

from .test_page import CHROMIUM, browser, lane, open_page, problems, shot  # noqa: F401

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium here")


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        job_secret=SecretStr("page-secret"),
        job_delay=4.0,  # four steps of a second: time to reload in the middle
    )


def test_a_job_runs_with_its_progress_and_survives_a_reload(
    browser: Browser,  # noqa: F811
    server: LiveServer,
    worker: None,
    problems: list[str],  # noqa: F811
) -> None:
    page = open_page(browser, server.url, problems)
    page.select_option("#job-type", "translate")
    page.fill("#job-content", "thank you")
    page.click("#job-form button")
    expect(lane(page, "job", ": queued")).to_have_count(1)
    expect(lane(page, "job", ": 1/4")).to_have_count(1)
    page.reload()  # mid-job: the page finds the job in sessionStorage and resumes its cursor
    expect(lane(page, "job", "succeeded: 🌍 Translated: 'thank you' → 'gracias'")).to_have_count(
        1, timeout=20_000
    )
    # After the reload, only what came after the cursor: no event twice, none missing.
    expect(lane(page, "job", ": queued")).to_have_count(0)
    expect(lane(page, "job", ": 4/4")).to_have_count(1)
    assert page.eval_on_selector("#job-progress", "bar => [bar.value, bar.max]") == [4, 4]
    shot(page, "job")
    page.reload()  # the job has ended: nothing is watched again
    expect(page.locator("#socket-job .state")).to_have_text("none")
    assert problems == []
