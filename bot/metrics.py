"""Prometheus metrics (``GET /metrics``): commands, API requests, dsc.gg calls and limiter waits.

One ``Metrics`` per process, with its own registry (tests build several). The dsc.gg client reports
through its ``observer`` hook (``bot.dscgg`` knows nothing of Prometheus); the API's middleware and
the bot's interaction listener call the methods here. Labels are bounded: route templates (never raw
paths), endpoint names, status codes and command names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands = Counter(
            "dscggbot_commands",
            "Slash commands, buttons and forms received, by command",
            ["command"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "dscggbot_api_requests",
            "HTTP API requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.api_latency = Histogram(
            "dscggbot_api_request_seconds",
            "HTTP API request latency, by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.dscgg_requests = Counter(
            "dscggbot_dscgg_requests",
            "Requests sent to dsc.gg, by endpoint and HTTP status (none: no answer)",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.dscgg_latency = Histogram(
            "dscggbot_dscgg_request_seconds",
            "dsc.gg request latency, by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.limiter_waits = Histogram(
            "dscggbot_dscgg_limiter_wait_seconds",
            "Time calls waited for the dsc.gg rate limiter before sending, by endpoint",
            ["endpoint"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    # ---------------------------------------------------------------- dsc.gg client observer

    def attempt_done(self, endpoint: str, status: int | None, seconds: float) -> None:
        self.dscgg_requests.labels(endpoint, str(status) if status else "none").inc()
        self.dscgg_latency.labels(endpoint).observe(seconds)

    def limiter_waited(self, endpoint: str, seconds: float) -> None:
        self.limiter_waits.labels(endpoint).observe(seconds)

    # ---------------------------------------------------------------- the API and the commands

    def api_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.api_requests.labels(method, route, str(status)).inc()
        self.api_latency.labels(method, route).observe(seconds)

    def command(self, name: str) -> None:
        self.commands.labels(name).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
