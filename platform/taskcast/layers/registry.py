"""Layers by alias, built from configuration."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt

from .base import ChannelLayer
from .memory import InMemoryLayer

__all__ = ["LayerConfig", "LayerRegistry"]


class LayerConfig(BaseModel):
    """How to build one layer. ``expiry`` (seconds) and ``capacity`` (messages per group) apply
    to layers that keep messages."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["memory"] = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "taskcast"
    expiry: PositiveInt | None = None
    capacity: PositiveInt | None = None


def build_layer(config: LayerConfig) -> ChannelLayer:
    match config.kind:
        case "memory":
            return InMemoryLayer()


class LayerRegistry(Mapping[str, ChannelLayer]):
    """The process's layers by alias; closing the registry closes them all."""

    def __init__(self, layers: Mapping[str, ChannelLayer]) -> None:
        self._layers = dict(layers)

    @classmethod
    def from_configs(cls, configs: Mapping[str, LayerConfig]) -> LayerRegistry:
        return cls({alias: build_layer(config) for alias, config in configs.items()})

    def __getitem__(self, alias: str) -> ChannelLayer:
        try:
            return self._layers[alias]
        except KeyError:
            known = ", ".join(sorted(self._layers)) or "none"
            raise KeyError(f"no layer with alias {alias!r} (configured: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    async def close(self) -> None:
        for layer in self._layers.values():
            await layer.close()
