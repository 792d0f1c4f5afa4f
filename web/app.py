"""The Starlette application: ``create_app(settings)`` builds it (uvicorn: ``--factory``)."""

from __future__ import annotations

import asyncio
import html
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from showcase import ENDPOINTS
from showcase.jobs import job_bucket
from showcase.queue import producer
from showcase.settings import Settings, TokenGrant
from taskcast import Consumer, LayerRegistry, Publisher
from taskcast.consumer import Connections
from taskcast.host_metrics import HostMetrics
from taskcast.metrics import Metrics, MetricsCollector

from .api import broadcast, job_tokens, start_job_endpoint
from .docs import asyncapi_declarations, asyncapi_json, asyncapi_page, asyncapi_yaml, client_module
from .tasks import TaskQueue

STATIC = Path(__file__).parent / "static"
SHOWCASE = (STATIC / "showcase.html").read_text()


def create_app(
    settings: Settings | None = None, consumers: Mapping[str, type[Consumer]] | None = None
) -> Starlette:
    """The app: the showcase's endpoints, and ``consumers`` (path → consumer class) of your own,
    each mounted with the app's guards (origin, tokens, rate limit, connection cap), metrics and
    shutdown, on the layer its ``layer_alias`` names."""
    settings = settings or Settings()
    layers = LayerRegistry.from_configs(settings.layer_configs())
    connections = Connections()
    metrics = Metrics()
    metrics.registry.register(MetricsCollector(metrics, layers))
    for alias, layer in layers.items():
        if layer.keeps_messages:
            layer.lag_observer = metrics.lag.labels(alias).observe
    options = settings.consumer_options(connections, metrics)
    scraped = metrics.registry
    host: HostMetrics | None = None
    if settings.metrics_dir is not None:  # one of several processes: /metrics adds them up
        host = HostMetrics(settings.metrics_dir, metrics.registry)
        scraped = CollectorRegistry(auto_describe=True)
        scraped.register(host)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.loop = asyncio.get_running_loop()  # for tests and tools that look inside
        writer = None if host is None else asyncio.create_task(write_every_second(host))
        try:
            yield
        finally:
            if writer is not None:
                writer.cancel()
            await layers.close()

    routes: list[BaseRoute] = [
        Route("/", index, name="index"),
        Route("/healthz", healthz, name="healthz"),
        Route("/readyz", readyz, name="readyz"),
        Route("/metrics", metrics_endpoint, name="metrics"),
        Route("/api/broadcast", broadcast, methods=["POST"], name="broadcast"),
        Route("/api/jobs", start_job_endpoint, methods=["POST"], name="jobs"),
        Route("/asyncapi.json", asyncapi_json, name="asyncapi_json"),
        Route("/asyncapi.yaml", asyncapi_yaml, name="asyncapi_yaml"),
        Route("/asyncapi", asyncapi_page, name="asyncapi"),
        Route("/asyncapi.d.ts", asyncapi_declarations, name="asyncapi_declarations"),
        Route("/taskcast.js", client_module, name="taskcast_js"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    routes += [
        WebSocketRoute(path, consumer.as_asgi(layers, options, path), name=consumer.__name__)
        for path, consumer in {**ENDPOINTS, **(consumers or {})}.items()
    ]
    check_token_paths(settings, routes)
    hosts = Middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts())
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[hosts])
    app.state.settings = settings
    app.state.layers = layers
    app.state.connections = connections
    app.state.metrics = metrics
    app.state.scraped = scraped
    app.state.publisher = Publisher(layers, settings.address_rules())
    app.state.tasks = TaskQueue(producer(settings))
    app.state.asyncapi = {}
    app.state.jobs_bucket = job_bucket(app)  # POST /api/jobs, for the whole process
    app.state.job_tokens = job_tokens(settings)
    return app


def check_token_paths(settings: Settings, routes: list[BaseRoute]) -> None:
    """A ``ValueError`` for a token path that opens nothing (a typo, a trailing slash, a path
    written percent-encoded): such a token would only ever be refused, silently."""
    sockets = [route for route in routes if isinstance(route, WebSocketRoute)]
    for grant in settings.ws_tokens.values():
        paths = grant.paths if isinstance(grant, TokenGrant) else grant
        for path in paths or ():
            if "%" in path or not any(
                path == route.path or route.path_regex.fullmatch(path) for route in sockets
            ):
                raise ValueError(
                    f"TASKCAST_WS_TOKENS: {path!r} is not a WebSocket endpoint of this app "
                    f"(its routes: {', '.join(route.path for route in sockets)}; write paths "
                    "unencoded, without a trailing slash)"
                )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "pid": os.getpid()})


async def metrics_endpoint(request: Request) -> Response:
    """The metrics in Prometheus' text format (see taskcast.metrics): this process's, or, with
    several on the host, all of theirs (taskcast.host_metrics)."""
    body = generate_latest(request.app.state.scraped)  # on the loop: the counters live there
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def write_every_second(host: HostMetrics) -> None:
    while True:
        host.write()
        await asyncio.sleep(1)


async def readyz(request: Request) -> Response:
    """Ready when every layer's backend answers: 200, else 503 (the process itself is alive)."""
    layers = await request.app.state.layers.ready()
    ready = all(layers.values())
    return JSONResponse({"ready": ready, "layers": layers}, status_code=200 if ready else 503)


async def index(request: Request) -> Response:
    """The showcase page: the four consumers in one timeline."""
    settings: Settings = request.app.state.settings
    flower = f"{request.url.scheme}://{request.url.hostname}:{settings.flower_port}/"
    return HTMLResponse(SHOWCASE.replace("{flower_url}", html.escape(flower, quote=True)))
