from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from showcase.settings import Settings


def test_defaults_follow_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    layers = Settings().layer_configs()
    assert sorted(layers) == ["analytics", "chat", "jobs", "notifications", "queue"]
    assert (layers["jobs"].expiry, layers["jobs"].capacity) == (3600, 1000)
    assert (layers["queue"].expiry, layers["queue"].capacity) == (900, 1000)
    assert (layers["analytics"].expiry, layers["analytics"].capacity) == (3600, 5000)
    assert layers["chat"].kind == "redis_pubsub" and layers["queue"].kind == "redis_reliable"
    assert len({config.prefix for config in layers.values()}) == 5
    assert {config.url for config in layers.values()} == {"redis://127.0.0.1:6379/0"}


def test_environment_variables_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("REDIS_URL", "redis://example:6380/2")
    monkeypatch.setenv("TASKCAST_QUEUE_CAPACITY", "10")
    monkeypatch.setenv("TASKCAST_MAX_FRAME_BYTES", "1024")
    settings = Settings()
    assert settings.port == 9001
    assert settings.layer_configs()["queue"].capacity == 10
    assert settings.layer_configs()["chat"].url == "redis://example:6380/2"
    assert settings.consumer_options().max_frame_bytes == 1024


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKCAST_QUEUE_EXPIRY", "-5")
    with pytest.raises(ValidationError):
        Settings()


def test_a_visibility_timeout_within_the_retry_backoff_is_refused_without_leaking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASKCAST_VISIBILITY_TIMEOUT", "60")
    monkeypatch.setenv("TASKCAST_BROADCAST_TOKEN", "supersecret")
    with pytest.raises(SystemExit) as refused:
        Settings.load()
    message = str(refused.value)
    assert "TASKCAST_VISIBILITY_TIMEOUT" in message and "retry backoff" in message
    assert "supersecret" not in message
    monkeypatch.setenv("TASKCAST_VISIBILITY_TIMEOUT", "61")
    assert Settings.load().idempotency_window == 61 + 10 + 60


@pytest.mark.parametrize("empty", ["", "   ", "\t", "\u200b"])
def test_an_empty_secret_is_no_secret(monkeypatch: pytest.MonkeyPatch, empty: str) -> None:
    monkeypatch.setenv("TASKCAST_BROADCAST_TOKEN", empty)
    monkeypatch.setenv("TASKCAST_FLOWER_PASSWORD", empty)
    settings = Settings()
    assert settings.broadcast_token is None and settings.flower_password is None
    assert Settings(flower_password="secret").flower_password is not None
    # Spaces around a secret are not part of it (a client's bearer token is stripped too).
    token = Settings(broadcast_token=" s3cret ").broadcast_token
    assert token is not None and token.get_secret_value() == "s3cret"
    # A blank WebSocket token would leave every endpoint open: the process does not start.
    monkeypatch.setenv("TASKCAST_WS_TOKENS", json.dumps({empty: None, "real": None}))
    with pytest.raises(SystemExit, match=r"TASKCAST_WS_TOKENS: .*may not be empty"):
        Settings.load()


def test_settings_that_are_not_json_end_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKCAST_WS_TOKENS", "")
    with pytest.raises(SystemExit, match=r"^taskcast: invalid settings: .*ws_tokens") as refused:
        Settings.load()
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TASKCAST_FLOWER_PASSWORD", "Correct,horse"), ("TASKCAST_FLOWER_USER", "ad:min")],
)
def test_flower_credentials_it_would_split_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit, match=variable) as refused:
        Settings.load()
    assert "horse" not in str(refused.value)


def test_a_token_is_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKCAST_WS_TOKENS", json.dumps({"café": None}))
    with pytest.raises(SystemExit, match="must be ASCII"):
        Settings.load()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("REDIS_URL", "reddis://:hunter2@db:6379/0", "no layer backend for reddis://"),
        ("REDIS_URL", "redis:/:hunter2@db:6379/0", "a URL without a scheme"),
        ("REDIS_URL", "redis://:hunter2@db:99999/0", "port must be a number"),
        ("TASKCAST_CHAT_URL", "redis+sentinel://u:hunter2?x@s1:26379/m", "percent-encoded"),
        ("TASKCAST_CHAT_URL", "redis+sentinel://:hunter2@s1:26379", "service"),
        ("TASKCAST_JOBS_URL", "redis+cluster://u:hunter2@n1:7000/0", "one database"),
        ("TASKCAST_QUEUE_URL", "redis+cluster://u:hunter2@n1:70000", "host:port"),
        ("TASKCAST_KEY_PREFIX", "app{1}", "without braces"),
        ("TASKCAST_WEB_PROCESSES", "-1", "greater than or equal to 0"),
    ],
)
def test_a_backend_the_settings_cannot_reach_is_one_line_without_its_password(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit, match=says) as refused:
        Settings.load()
    message = str(refused.value)
    assert "\n" not in message and "hunter2" not in message
    assert message.startswith("taskcast: invalid settings: TASKCAST_")


@pytest.mark.parametrize(
    "url", ["redis+sentinel://:hunter2@s1:26379/main", "redis+cluster://n1:7000"]
)
def test_celery_needs_its_own_redis_beside_a_sentinel_or_cluster(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("TASKCAST_CELERY_RESULT_BACKEND", "redis://:hunter2@db:6379/1")
    with pytest.raises(SystemExit, match=r"set TASKCAST_CELERY_BROKER_URL \(e.g.") as refused:
        Settings.load()
    assert "hunter2" not in str(refused.value) and "\n" not in str(refused.value)
    monkeypatch.setenv("TASKCAST_CELERY_BROKER_URL", "redis://db:6379/1")
    settings = Settings.load()
    assert settings.broker_url == "redis://db:6379/1"


def test_a_layers_backend_comes_from_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKCAST_CHAT_URL", "memory://")
    monkeypatch.setenv("TASKCAST_QUEUE_URL", "redis+cluster://n1:7000,n2:7001")
    monkeypatch.setenv("TASKCAST_ANALYTICS_URL", "redis+sentinel://:pw@s1:26379,s2:26379/main/2")
    layers = Settings().layer_configs()
    assert layers["chat"].kind == "memory"
    assert layers["queue"].kind == "redis_reliable" and layers["queue"].url.startswith("redis+c")
    assert "pw" not in repr(layers["analytics"])  # a config's repr hides the login
