"""The one typed settings object, read from environment variables (``TASKCAST_*``, plus the
conventional ``PORT`` and ``REDIS_URL``). Built by the entry points and passed down."""

from __future__ import annotations

from pydantic import AliasChoices, Field, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from taskcast import ConsumerOptions, LayerConfig


def _env(name: str, *aliases: str) -> AliasChoices:
    return AliasChoices(f"TASKCAST_{name}", *aliases)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKCAST_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", validation_alias=_env("HOST", "HOST"))
    port: int = Field(8000, ge=0, le=65535, validation_alias=_env("PORT", "PORT"))
    log_level: str = "info"
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=_env("REDIS_URL", "REDIS_URL")
    )

    # Layers, one per alias: key prefix, and for the reliable ones expiry (s) and capacity.
    chat_prefix: str = "taskcast:chat"
    queue_prefix: str = "taskcast:queue"
    queue_expiry: PositiveInt = 900
    queue_capacity: PositiveInt = 1000
    notifications_prefix: str = "taskcast:notifications"
    analytics_prefix: str = "taskcast:analytics"
    analytics_expiry: PositiveInt = 3600
    analytics_capacity: PositiveInt = 5000

    # Limits per socket.
    max_frame_bytes: PositiveInt = 65_536
    outbox_size: PositiveInt = 1_024

    def layer_configs(self) -> dict[str, LayerConfig]:
        def layer(prefix: str, expiry: int | None = None, size: int | None = None) -> LayerConfig:
            return LayerConfig(url=self.redis_url, prefix=prefix, expiry=expiry, capacity=size)

        return {
            "chat": layer(self.chat_prefix),
            "queue": layer(self.queue_prefix, self.queue_expiry, self.queue_capacity),
            "notifications": layer(self.notifications_prefix),
            "analytics": layer(
                self.analytics_prefix, self.analytics_expiry, self.analytics_capacity
            ),
        }

    def consumer_options(self) -> ConsumerOptions:
        return ConsumerOptions(max_frame_bytes=self.max_frame_bytes, outbox_size=self.outbox_size)
