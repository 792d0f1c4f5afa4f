"""The showcase page in real Chromium (Debian's, driven by Playwright). Screenshots go to
artifacts/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from playwright.sync_api import Browser, Page, expect, sync_playwright

from showcase import ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.testing import LiveServer
from web.app import create_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium here")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def problems() -> list[str]:
    return []


def open_page(browser: Browser, url: str, problems: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone's screen
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    for source in ["chat", "reliable", "notification", "analytics", "system"]:
        expect(page.locator(f"#socket-{source}")).to_have_attribute("data-state", "open")
    return page


def lane(page: Page, source: str, text: str) -> object:
    return page.locator(f'#timeline li[data-source="{source}"]', has_text=text)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_the_page_opens_four_sockets_without_console_errors(
    browser: Browser, server: LiveServer, problems: list[str]
) -> None:
    page = open_page(browser, server.url, problems)
    expect(lane(page, "analytics", "📊 Analytics: page_view")).to_have_count(1)  # sent on load
    expect(lane(page, "chat", "📢 Someone joined the chat")).to_have_count(1)
    shot(page, "loaded")
    assert problems == []


def test_send_shows_the_chat_and_reliable_echoes(
    browser: Browser, server: LiveServer, problems: list[str]
) -> None:
    page = open_page(browser, server.url, problems)
    page.fill("#message", "hello from the page")
    page.click("#chat-form button")
    expect(lane(page, "chat", "💬 hello from the page")).to_have_count(1)
    expect(lane(page, "reliable", "📨 hello from the page")).to_have_count(1)
    page.fill("#event", "button_click:export")
    page.click("#analytics-form button")
    expect(lane(page, "analytics", "📊 Analytics: button_click:export")).to_have_count(1)
    shot(page, "echoes")
    assert problems == []


def test_a_task_run_by_a_worker_shows_in_its_lane(
    browser: Browser, server: LiveServer, worker: None, celery_app: Celery, problems: list[str]
) -> None:
    page = open_page(browser, server.url, problems)
    task = celery_app.send_task(
        "workers.tasks.send_notification", kwargs={"message": "from a worker"}
    )
    task.get(timeout=30)
    expect(lane(page, "notification", "[system] from a worker")).to_have_count(1)
    expect(lane(page, "chat", "from a worker")).to_have_count(0)
    shot(page, "worker-task")


def test_after_a_server_restart_the_page_gets_what_it_missed_marked_replayed(
    browser: Browser, settings: Settings, problems: list[str]
) -> None:
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    with LiveServer(create_app(settings)) as first:
        port = first.port
        page = open_page(browser, first.url, problems)
        expect(lane(page, "reliable", "🔒 Reliable chat connection established!")).to_have_count(1)
    expect(page.locator("#socket-reliable")).to_have_attribute("data-state", "closed")
    for n in range(2):
        publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"while down {n}"))
    with LiveServer(create_app(settings), port=port):
        for n in range(2):
            missed = lane(page, "reliable", f"while down {n}")
            expect(missed).to_have_count(1, timeout=20_000)
            expect(missed.locator(".badge.replayed")).to_have_count(1)
        expect(page.locator("#socket-reliable")).to_have_attribute("data-state", "open")
        shot(page, "replayed")
    # The only console errors allowed are the browser's own reports of the refused reconnections.
    assert all("WebSocket" in problem for problem in problems), problems


def test_a_reload_resumes_the_reliable_lane(
    browser: Browser, server: LiveServer, settings: Settings, problems: list[str]
) -> None:
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    page = open_page(browser, server.url, problems)
    publisher.publish(ReliableChatConsumer, SystemNotify(payload="before the reload"))
    expect(lane(page, "reliable", "before the reload")).to_have_count(1)
    page.goto("about:blank")  # the page is gone; its cursor stays in sessionStorage
    publisher.publish(ReliableChatConsumer, SystemNotify(payload="while reloading"))
    page.goto(server.url)
    missed = lane(page, "reliable", "while reloading")
    expect(missed).to_have_count(1)
    expect(missed.locator(".badge.replayed")).to_have_count(1)
    expect(lane(page, "reliable", "before the reload")).to_have_count(0)  # not again
    assert problems == []


def test_markup_in_a_message_is_shown_as_text(
    browser: Browser, server: LiveServer, problems: list[str]
) -> None:
    page = open_page(browser, server.url, problems)
    attack = "<img src=x onerror=window.__owned=1>"
    page.fill("#message", attack)
    page.click("#chat-form button")
    expect(lane(page, "chat", f"💬 {attack}")).to_have_count(1)
    assert page.locator("#timeline img").count() == 0
    assert page.evaluate("window.__owned") is None
    shot(page, "markup-as-text")
    assert problems == []


def test_the_system_echo_and_a_room_between_two_pages(
    browser: Browser, server: LiveServer, problems: list[str]
) -> None:
    page = open_page(browser, server.url, problems)
    expect(lane(page, "system", "🔧 System: Connection established!")).to_have_count(1)
    page.fill("#echo", "anyone there?")
    page.click("#echo-form button")
    expect(lane(page, "system", "🔧 System Echo: anyone there?")).to_have_count(1)
    page.fill("#room-name", "lobby")
    page.click("#room-form button")
    expect(page.locator("#socket-room")).to_have_attribute("data-state", "open")
    other = open_page(browser, server.url, problems)
    other.fill("#room-name", "lobby")
    other.click("#room-form button")
    expect(other.locator("#socket-room")).to_have_attribute("data-state", "open")
    expect(lane(page, "room", "🚪 Someone joined room 'lobby'")).to_have_count(1)
    other.fill("#room-message", "hi lobby")
    other.click("#room-chat-form button")
    for each in (page, other):
        expect(lane(each, "room", "💬 hi lobby")).to_have_count(1)
    other.fill("#room-name", "attic")  # moves: the lobby hears it leave
    other.click("#room-form button")
    expect(lane(page, "room", "👋 Someone left room 'lobby'")).to_have_count(1)
    other.fill("#room-message", "up here")
    other.click("#room-chat-form button")
    expect(lane(other, "room", "💬 up here")).to_have_count(1)
    expect(lane(page, "room", "up here")).to_have_count(0)
    shot(page, "rooms")
    page.fill("#room-name", "..")  # a URL would collapse it: the page says so, opens nothing
    page.click("#room-form button")
    expect(lane(page, "room", "a room name needs a letter or digit")).to_have_count(1)
    page.fill("#room-name", "no;room")
    page.click("#room-form button")
    expect(page.locator("#socket-room .state")).to_contain_text("4400")
    assert problems == []


def test_with_tokens_the_page_passes_its_own_on(
    browser: Browser, settings: Settings, problems: list[str]
) -> None:
    tokens = {"page-token": {"user": "alice"}}
    app = create_app(
        settings.model_copy(update={"ws_tokens": Settings(ws_tokens=tokens).ws_tokens})
    )
    with LiveServer(app) as live:
        page = open_page(browser, f"{live.url}/?token=page-token", problems)
        expect(lane(page, "system", "🔧 System: Connection established!")).to_have_count(1)
        refused = browser.new_page()
        refused.goto(live.url)  # no token: refused, and not retried
        expect(refused.locator("#socket-chat .state")).to_contain_text("4401")
    assert problems == []
