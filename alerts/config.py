"""The sinks the ``[alerts]`` section builds (its keys and checks: ``alerts.settings``).

Secrets (the webhook's HMAC key, a Redis password) come from a file or an environment
variable, never from the config file itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from .center import AlertCenter, Sink
from .settings import AlertSettings, _hostport
from .sinks import LogSink, RedisSink, WebhookSink


def _from_env(variable: str, where: str, problems: list[str]) -> bytes:
    value = os.environ.get(variable, "")
    if not value:
        problems.append(f"{where}: ${variable} is not set")
    return value.encode()


def read_secrets(settings: AlertSettings, base: Path | None = None,
                 where: str = "alerts") -> tuple[dict[str, bytes], list[str]]:
    """The webhook key and Redis password, read now; problems name the file or variable.

    (sender/keys.py reads the wallets' secrets the same way; it is not imported here because
    it brings web3 along, which the exchange core does not need.)
    """
    secrets: dict[str, bytes] = {}
    problems: list[str] = []
    if settings.webhook_url and settings.webhook_secret_env:
        secrets["webhook"] = _from_env(settings.webhook_secret_env,
                                       f"{where}.webhook_secret_env", problems)
    elif settings.webhook_url:
        path = Path(settings.webhook_secret_file).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            secrets["webhook"] = path.read_bytes().strip()
        except OSError as exc:
            problems.append(f"{where}.webhook_secret_file: cannot read {path}: {exc.strerror}")
        else:
            if not secrets["webhook"]:
                problems.append(f"{where}.webhook_secret_file: {path} is empty")
    if settings.redis_password_env:
        secrets["redis"] = _from_env(settings.redis_password_env,
                                     f"{where}.redis_password_env", problems)
    return secrets, problems


def build_center(settings: AlertSettings, secrets: dict[str, bytes], *,
                 service: str) -> AlertCenter:
    """An AlertCenter with the configured sinks (the log sink unless ``log = false``)."""
    sinks: list[Sink] = []
    if settings.log:
        sinks.append(LogSink())
    if settings.redis_addr:
        host, port = _hostport(settings.redis_addr) or ("127.0.0.1", 6379)
        sinks.append(RedisSink(host, port, settings.redis_key,
                               password=secrets.get("redis", b"").decode(),
                               retries=settings.retries))
    if settings.webhook_url:
        sinks.append(WebhookSink(settings.webhook_url, secrets["webhook"],
                                 timeout=float(settings.webhook_timeout),  # float-ok: seconds
                                 retries=settings.retries))
    return AlertCenter(sinks, service=service,
                       min_interval=float(settings.min_interval))  # float-ok: seconds
