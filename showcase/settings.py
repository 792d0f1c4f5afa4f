"""The one typed settings object, read from environment variables (``TASKCAST_*``, plus the
conventional ``PORT`` and ``REDIS_URL``). Built by the entry points and passed down."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from taskcast import AddressRules, ConsumerOptions, InvalidAddress, LayerConfig, layer_config
from taskcast.consumer import Connections
from taskcast.guards import Grant, TokenAuthenticator
from taskcast.layers.redis_target import url_scheme
from taskcast.layers.registry import check_url
from taskcast.metrics import Metrics

# The longest a failed task waits before its retry (Celery's retry_backoff_max, in seconds).
TASK_RETRY_BACKOFF_MAX = 60
# How often a worker looks for tasks whose worker died (seconds): kombu's Redis transport gives a
# task back once it has been unacknowledged for the visibility timeout, at its next such sweep.
BROKER_RESTORE_SWEEP = 10


# The Host values that name this machine itself: always answered.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _visible(text: str) -> bool:
    """Whether ``text`` has a character one can see (not only spaces, zero-width ones...)."""
    return any(c.isprintable() and not c.isspace() for c in text)


def loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable an error's location names (an alias names itself)."""
    name = "_".join(map(str, loc)).upper()
    return name if name.startswith("TASKCAST_") else f"TASKCAST_{name}"


def _env(name: str, *aliases: str) -> AliasChoices:
    return AliasChoices(f"TASKCAST_{name}", *aliases)


class TokenGrant(BaseModel):
    """What a token opens (``paths``; null: every path) and as whom (``user``; null: anonymous)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    user: str | None = None
    paths: list[str] | None = None


def _paths(paths: list[str] | None) -> frozenset[str] | None:
    return None if paths is None else frozenset(paths)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKCAST_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", validation_alias=_env("HOST", "HOST"))
    # Web processes on this host, sharing the port (SO_REUSEPORT; see web.processes); 0: one
    # per core. Every limit below is per process.
    web_processes: int = Field(1, ge=0, le=1024)
    # The folder where the web processes of a host leave their metrics for /metrics to add up
    # (python -m web makes one when it runs several; see taskcast.host_metrics).
    metrics_dir: Path | None = None
    port: int = Field(8000, ge=0, le=65535, validation_alias=_env("PORT", "PORT"))
    log_level: str = "info"
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=_env("REDIS_URL", "REDIS_URL")
    )

    # Layers, one per alias: URL (default REDIS_URL; its scheme picks the backend: redis://,
    # rediss://, unix://, redis+sentinel://, redis+cluster:// or memory://), key prefix (default
    # <key_prefix>:<alias>), and for the ones that keep messages expiry (s) and capacity.
    # TASKCAST_LAYER_BACKEND=memory puts every layer in this process: tests and demos, no Redis.
    layer_backend: Literal["redis", "memory"] = "redis"
    key_prefix: str = "taskcast"
    chat_url: str | None = None
    chat_prefix: str | None = None
    queue_url: str | None = None
    queue_prefix: str | None = None
    queue_expiry: PositiveInt = 900
    queue_capacity: PositiveInt = 1000
    notifications_url: str | None = None
    notifications_prefix: str | None = None
    analytics_url: str | None = None
    analytics_prefix: str | None = None
    analytics_expiry: PositiveInt = 3600
    analytics_capacity: PositiveInt = 5000
    # Jobs: each job's events, kept this long after the last one (a finished job's stream
    # expires then), at most this many per job.
    jobs_url: str | None = None
    jobs_prefix: str | None = None
    jobs_expiry: PositiveInt = 3600
    jobs_capacity: PositiveInt = 1000
    # The secret watch tokens are signed with (web and workers alike). Unset: nobody can watch
    # a job (scripts/run makes one per run).
    job_secret: SecretStr | None = None
    # The seed's background jobs pretend to work this long (seconds), in four steps.
    job_delay: float = Field(2.0, ge=0, le=60)
    # Jobs a client may start: per socket on /ws/background_jobs, and per web process through
    # POST /api/jobs (a second, with a burst); past it, an error status or 429.
    job_rate: PositiveFloat = 2.0
    job_burst: PositiveInt = 10
    # Catch-ups on the reliable layers: entries read at a time (a socket holds at most about two
    # pages of one), and catch-up reads at once per web process.
    replay_page_size: int = Field(100, ge=1, le=10_000)
    replay_concurrency: PositiveInt = 16

    # WebSockets per web process, open or in their handshake: past it, new handshakes are
    # closed with 1013. HTTP requests are not counted (health checks answer at the cap).
    max_connections: PositiveInt = 10_000
    # A ping every ws_ping_interval seconds; a peer that does not answer within ws_ping_timeout
    # is closed (it is gone, or stuck: either way it holds a descriptor and a queue).
    ws_ping_interval: PositiveFloat = 20.0
    ws_ping_timeout: PositiveFloat = 20.0
    # A connection must send its whole request head (an HTTP request, or a WebSocket upgrade)
    # within this many seconds and in at most this many bytes: else closed, or answered 431.
    handshake_timeout: PositiveFloat = 10.0
    max_request_head_bytes: int = Field(8192, ge=1024)

    # Limits per socket.
    max_frame_bytes: PositiveInt = 65_536
    outbox_size: PositiveInt = 1_024
    ws_compression: bool = False
    # Origins allowed besides the app's own origin ("*": any), for WebSocket handshakes.
    allowed_origins: list[str] = []
    # Host header values the app answers (Starlette's TrustedHostMiddleware; "*.example.com"
    # wildcards; ["*"]: any), besides localhost, 127.0.0.1 and [::1], always answered. Unset:
    # those only on a loopback HOST; required on any other.
    allowed_hosts: list[str] | None = None
    # WebSocket tokens: token → the paths it may open (a list; null: all), or → a grant
    # {"user": name, "paths": [...] or null} naming the user it signs in. Paths may be routes
    # ("/ws/room/{room_name}": every room). Empty: the endpoints are open, and anonymous.
    ws_tokens: dict[str, list[str] | TokenGrant | None] = {}
    # What a value from the URL (a room's name) or a user's name may be where it names a group
    # (else the socket is closed 4400): at most this many characters; letters, marks and digits
    # of any script and _ . ~ -, with a letter or digit; or, with a pattern (a regular
    # expression), every character matching it.
    group_value_pattern: str | None = None
    max_group_value_chars: PositiveInt = 64
    # Frames a client may send a second, with a burst; past it rate_limited errors, then 1008.
    rate_per_second: PositiveFloat | None = 50.0
    rate_burst: PositiveInt = 100
    # Analytics: what a client (or a task's caller) may send as an event — a name of at most
    # this many characters and data of at most this many bytes of compact JSON — and the
    # aggregate: at most max_names distinct names per summary (the rest counted as "(other)"),
    # over a rolling window of this many seconds.
    analytics_max_event_chars: PositiveInt = 100
    analytics_max_data_bytes: PositiveInt = 4096
    analytics_max_names: PositiveInt = 20
    analytics_window: PositiveInt = 3600

    # Workers: the Celery broker and result backend (default REDIS_URL), the beat intervals (s),
    # the broker's visibility timeout (s; above every countdown and retry backoff: a task is
    # redelivered that long after a worker took it and died), Flower.
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
    celery_queue: str = "tasks"
    visibility_timeout: PositiveInt = 3600
    announcement_interval: PositiveFloat = 60.0
    analytics_summary_interval: PositiveFloat = 30.0
    flower_port: int = Field(5555, ge=0, le=65535)
    # Where Flower listens (default: HOST). Loopback keeps it private while the web tier faces
    # the world: HOST=0.0.0.0 TASKCAST_FLOWER_HOST=127.0.0.1.
    flower_host: str | None = None
    flower_user: str = "taskcast"
    # No default password: without one Flower listens on loopback only (see workers.flower).
    flower_password: SecretStr | None = None
    # The HTTP trigger (POST /api/broadcast) answers only when a bearer token is set.
    broadcast_token: SecretStr | None = None

    @field_validator("flower_password", "broadcast_token", "job_secret", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        # An empty secret is no secret: "" (compose's ${VAR:-}), spaces or invisible characters
        # mean unset, feature off. Spaces around one are dropped (a client's are, too).
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            return value.strip() if _visible(value) else None
        return value

    @field_validator("flower_password", "flower_user", mode="after")
    @classmethod
    def _flower_can_take_it(cls, value: Any) -> Any:
        # Flower splits its basic-auth setting at commas (several logins), user from password
        # at the first colon: a comma would make each half a password of its own.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and "," in text:
            raise ValueError("may not contain a comma (Flower would split it in two)")
        if isinstance(value, str) and ":" in value:
            raise ValueError("may not contain a colon")
        return value

    @field_validator("ws_tokens", mode="after")
    @classmethod
    def _no_empty_tokens(
        cls, value: dict[str, list[str] | TokenGrant | None]
    ) -> dict[str, list[str] | TokenGrant | None]:
        # A blank token (a template whose variable was unset) would leave the endpoints open
        # while the operator thinks them closed: refuse to start instead.
        if any(not _visible(token) or token != token.strip() for token in value):
            raise ValueError("a token may not be empty, blank or start or end with spaces")
        if not all(token.isascii() for token in value):  # a header carries it as latin-1
            raise ValueError("a token must be ASCII")
        return value

    @field_validator(
        "redis_url",
        "chat_url",
        "queue_url",
        "notifications_url",
        "analytics_url",
        "jobs_url",
    )
    @classmethod
    def _a_backend(cls, value: str | None) -> str | None:
        # Checked here, where the error names the variable and never echoes the URL (it may
        # hold a password).
        if value is not None:
            check_url(value)
        return value

    @field_validator(
        "key_prefix",
        "chat_prefix",
        "queue_prefix",
        "notifications_prefix",
        "analytics_prefix",
        "jobs_prefix",
    )
    @classmethod
    def _no_braces(cls, value: str | None) -> str | None:
        if value is not None and ("{" in value or "}" in value or not value):
            raise ValueError("a key prefix must be non-empty, without braces")
        return value

    @field_validator("group_value_pattern")
    @classmethod
    def _a_pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _celery_has_a_node(self) -> Settings:
        # Celery's Redis transport and result backend speak to one node: with the layers on a
        # Sentinel or a Cluster, the operator names Celery's own (redis://, or Celery's
        # sentinel:// with its transport options) instead of a default that cannot work.
        if url_scheme(self.redis_url) in ("redis", "rediss", "unix"):
            return self
        unset = [
            _variable((name,))
            for name in ("celery_broker_url", "celery_result_backend")
            if getattr(self, name) is None
        ]
        if unset:
            raise ValueError(
                f"REDIS_URL names a Sentinel or a Cluster, which Celery's Redis transport does not "
                f"speak: set {' and '.join(unset)} (e.g. redis://host:6379/1)"
            )
        return self

    @model_validator(mode="after")
    def _users_are_names(self) -> Settings:
        rules = self.address_rules()
        for grant in self.ws_tokens.values():
            if isinstance(grant, TokenGrant) and grant.user is not None:
                try:
                    rules.check("user", grant.user)
                except InvalidAddress as exc:
                    raise ValueError(f"ws_tokens: {exc}: {grant.user!r}") from None
        return self

    def address_rules(self) -> AddressRules:
        return AddressRules(self.group_value_pattern, self.max_group_value_chars)

    def token_authenticator(self) -> TokenAuthenticator | None:
        if not self.ws_tokens:
            return None
        grants = {
            token: Grant(_paths(g.paths), g.user) if isinstance(g, TokenGrant) else g
            for token, g in self.ws_tokens.items()
        }
        return TokenAuthenticator(grants)

    @field_validator("visibility_timeout")
    @classmethod
    def _redelivery_fits(cls, value: int) -> int:
        if value <= TASK_RETRY_BACKOFF_MAX:
            raise ValueError(
                f"must exceed the tasks' longest retry backoff ({TASK_RETRY_BACKOFF_MAX} s), or a "
                "task waiting for its retry is redelivered and runs twice"
            )
        return value

    @classmethod
    def load(cls) -> Settings:
        """The settings from the environment; a bad value ends the process with a short
        message naming the variable (no traceback, no other setting's value)."""
        try:
            return cls()
        except ValidationError as exc:
            problems = "; ".join(
                f"{_variable(error['loc']) + ': ' if error['loc'] else ''}{error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            )
            raise SystemExit(f"taskcast: invalid settings: {problems}") from None
        except SettingsError as exc:  # a value that is not even JSON, say
            cause = f": {exc.__cause__}" if exc.__cause__ else ""
            raise SystemExit(f"taskcast: invalid settings: {exc}{cause}") from None

    def trusted_hosts(self) -> list[str]:
        """The Host values to answer. A server reachable beyond this machine must name them: a
        page on any site can otherwise point a name of its own at it (DNS rebinding)."""
        if self.allowed_hosts:
            # Loopback names too: health checks on the machine (compose's) ask for 127.0.0.1,
            # and a rebinding page cannot point those at anything.
            return [*self.allowed_hosts, *LOOPBACK_HOSTS]
        if loopback(self.host):
            return list(LOOPBACK_HOSTS)
        raise ValueError(
            f"HOST is {self.host}: set TASKCAST_ALLOWED_HOSTS to the host names clients use "
            '(a JSON list, e.g. ["chat.example.com"]; ["*"] accepts any)'
        )

    @property
    def idempotency_window(self) -> int:
        """How long a task's idempotency key is kept (seconds). A task whose worker died is
        redelivered at the first sweep after the visibility timeout (while some worker runs),
        and a failed one retried up to the longest backoff later; a repeat within this window
        is a no-op."""
        return self.visibility_timeout + BROKER_RESTORE_SWEEP + TASK_RETRY_BACKOFF_MAX

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def result_backend(self) -> str:
        return self.celery_result_backend or self.redis_url

    def layer_configs(self) -> dict[str, LayerConfig]:
        """Each alias's layer: chat and notifications are pub/sub (nothing kept), the others
        keep messages; the backend comes from the URL's scheme."""

        def layer(alias: str, keep: tuple[int, int] | None = None) -> LayerConfig:
            url = getattr(self, f"{alias}_url") or self.redis_url
            return layer_config(
                "memory://" if self.layer_backend == "memory" else url,
                keep=keep,
                prefix=getattr(self, f"{alias}_prefix") or f"{self.key_prefix}:{alias}",
                idempotency_window=self.idempotency_window,
                **({} if keep is None else self.replay_options()),
            )

        return {
            "chat": layer("chat"),
            "queue": layer("queue", (self.queue_expiry, self.queue_capacity)),
            "notifications": layer("notifications"),
            "analytics": layer("analytics", (self.analytics_expiry, self.analytics_capacity)),
            "jobs": layer("jobs", (self.jobs_expiry, self.jobs_capacity)),
        }

    def replay_options(self) -> dict[str, int]:
        return {"page_size": self.replay_page_size, "replay_concurrency": self.replay_concurrency}

    def consumer_options(
        self, connections: Connections | None = None, metrics: Metrics | None = None
    ) -> ConsumerOptions:
        return ConsumerOptions(
            connections=connections,
            metrics=metrics,
            max_frame_bytes=self.max_frame_bytes,
            outbox_size=self.outbox_size,
            allowed_origins=frozenset(self.allowed_origins),
            authenticator=self.token_authenticator(),
            address_rules=self.address_rules(),
            rate=self.rate_per_second,
            burst=self.rate_burst,
            max_connections=self.max_connections,
        )
