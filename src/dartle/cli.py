"""`dartle run|config|check` — flags named as uvicorn names them, so a switch is one word.

Every option of `run` can also come from a DARTLE_* variable, a TOML file (--config, or
[tool.dartle] in pyproject.toml) or the default, in that order of precedence
(dartle.configsources); `dartle config` shows what wins and why.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from dartle import __version__
from dartle.config import LOG_LEVELS, Config

F = TypeVar("F", bound=Callable[..., Any])
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Config)}


def _d(name: str) -> Any:
    """A flag's default is the Config default: one place says what it is."""
    return _DEFAULTS[name]


SERVER_OPTIONS = [
    click.option("--host", default=_d("host"), show_default=True, help="Bind to this address."),
    click.option("--port", default=_d("port"), show_default=True, type=int,
                 help="Bind to this port (0: any free port)."),
    click.option("--uds", default=None, help="Bind to this Unix domain socket path."),
    click.option("--fd", default=None, type=int,
                 help="Serve on this already-bound socket file descriptor."),
    click.option("--factory", is_flag=True,
                 help="APP is a factory: call it with no arguments to get the app."),
    click.option("--app-dir", default=_d("app_dir"), show_default=True,
                 help="Look for the app's module here (put first on sys.path)."),
    click.option("--loop", type=click.Choice(["auto", "uvloop", "asyncio"]), default=_d("loop"),
                 show_default=True),
    click.option("--lifespan", type=click.Choice(["auto", "on", "off"]), default=_d("lifespan"),
                 show_default=True),
    click.option("--root-path", default="", help="The path prefix the app is mounted at behind a proxy."),
    click.option("--log-level", type=click.Choice(LOG_LEVELS), default=_d("log_level"), show_default=True),
    click.option("--log-config", default=None, help="Logging configuration file (.json, .yaml or .ini)."),
    click.option("--access-log/--no-access-log", default=_d("access_log"), show_default=True,
                 help="Log each request."),
    click.option("--proxy-headers/--no-proxy-headers", default=_d("proxy_headers"), show_default=True,
                 help="Trust X-Forwarded-For/Proto from --forwarded-allow-ips."),
    click.option("--forwarded-allow-ips", default=None,
                 help="Comma-separated IPs/networks to trust proxy headers from ('*' for all). "
                      "Default: $FORWARDED_ALLOW_IPS or 127.0.0.1."),
    click.option("--server-header/--no-server-header", default=_d("server_header"), show_default=True),
    click.option("--date-header/--no-date-header", default=_d("date_header"), show_default=True),
    click.option("--timeout-keep-alive", default=_d("timeout_keep_alive"), type=float, show_default=True,
                 help="Close keep-alive connections idle this many seconds."),
    click.option("--timeout-header", default=_d("timeout_header"), type=float, show_default=True,
                 help="Seconds a client has to send a whole request head (slowloris guard)."),
    click.option("--timeout-graceful-shutdown", default=_d("timeout_graceful_shutdown"), type=float,
                 show_default=True, help="Seconds in-flight requests get to finish on shutdown."),
    click.option("--limit-concurrency", default=None, type=int,
                 help="Answer 503 past this many concurrent connections or requests."),
    click.option("--backlog", default=_d("backlog"), type=int, show_default=True, help="Listen backlog."),
    click.option("--max-header-size", "--h11-max-header-size", "--h11-max-incomplete-event-size",
                 "max_header_size", default=_d("max_header_size"), type=int, show_default=True,
                 help="Largest request head (request line and headers) in bytes; past it: 431."),
    click.option("--max-body-size", default=None, type=int,
                 help="Largest request body in bytes; past it: 413. Default: no limit."),
    click.option("--ws", type=click.Choice(["auto", "none", "websockets"]), default=_d("ws"),
                 show_default=True,
                 help="WebSocket support: 'none' answers upgrade requests as plain HTTP."),
    click.option("--ws-max-size", default=_d("ws_max_size"), type=int, show_default=True,
                 help="Largest WebSocket message in bytes; past it the connection closes with 1009."),
    click.option("--ws-ping-interval", default=_d("ws_ping_interval"), type=float, show_default=True,
                 help="Seconds between server pings on a WebSocket."),
    click.option("--ws-ping-timeout", default=_d("ws_ping_timeout"), type=float, show_default=True,
                 help="Seconds to wait for a pong before closing with 1011."),
    click.option("--ws-per-message-deflate/--no-ws-per-message-deflate",
                 default=_d("ws_per_message_deflate"), show_default=True,
                 help="Offer permessage-deflate compression on WebSockets."),
    # TLS and HTTP/2 (see docs/server.md)
    click.option("--ssl-keyfile", default=None, help="TLS private key file (PEM)."),
    click.option("--ssl-certfile", default=None,
                 help="TLS certificate chain file (PEM); serving it turns TLS on."),
    click.option("--ssl-keyfile-password", default=None, help="Password of an encrypted key file."),
    click.option("--ssl-ca-certs", default=None,
                 help="CA certificates (PEM) to verify client certificates with."),
    click.option("--ssl-cert-reqs", default=_d("ssl_cert_reqs"), type=click.IntRange(0, 2),
                 show_default=True,
                 help="Client certificates: 0 not asked, 1 optional, 2 required "
                      "(as Python's ssl.CERT_*)."),
    click.option("--ssl-ciphers", default=None,
                 help="OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's). "
                      "Default: OpenSSL's."),
    click.option("--http2/--no-http2", default=_d("http2"), show_default=True,
                 help="Serve HTTP/2: ALPN h2 over TLS, h2c (prior knowledge or Upgrade) in clear."),
    click.option("--h2-max-concurrent-streams", default=_d("h2_max_concurrent_streams"), type=int,
                 show_default=True, help="Streams one HTTP/2 connection may have open at once."),
    click.option("--h2-stall-timeout", default=_d("h2_stall_timeout"), type=float, show_default=True,
                 help="Seconds HTTP/2 response data may wait on a peer's shut flow-control window "
                      "before the connection is closed."),
    click.option("--interface", type=click.Choice(["auto", "asgi3", "asgi2", "wsgi"]),
                 default=_d("interface"), show_default=True, help="The app's interface; auto detects it."),
    click.option("--strict-asgi", is_flag=True,
                 help="Check every ASGI event both ways and fail loudly on a broken rule."),
    # Worker processes (see docs/operations.md)
    click.option("--workers", default=None, type=int,
                 help="Serve from this many worker processes under a supervisor. "
                      "Default: serve in this process."),
    click.option("--reuse-port", is_flag=True,
                 help="Each worker binds its own socket with SO_REUSEPORT (the kernel spreads "
                      "connections) instead of sharing the supervisor's."),
    click.option("--max-requests", "--limit-max-requests", "max_requests", default=None, type=int,
                 help="Replace a worker gracefully after it has served about this many requests."),
    click.option("--max-requests-jitter", "--limit-max-requests-jitter", "max_requests_jitter",
                 default=_d("max_requests_jitter"), type=int, show_default=True,
                 help="Add 0..N to each worker's --max-requests so they do not recycle together."),
    click.option("--max-worker-memory", default=None,
                 help="Replace a worker gracefully once its resident memory passes this size "
                      "(e.g. 512M, 2G)."),
    click.option("--worker-healthcheck-timeout", "--timeout-worker-healthcheck",
                 "worker_healthcheck_timeout", default=_d("worker_healthcheck_timeout"), type=float,
                 show_default=True,
                 help="Replace a worker whose event loop has not answered the supervisor's "
                      "heartbeat for this many seconds."),
    click.option("--reload", is_flag=True, help="Restart the workers when a watched file changes."),
    click.option("--reload-dir", multiple=True,
                 help="Watch this directory (repeatable). Default: --app-dir."),
    click.option("--reload-include", multiple=True,
                 help="Also watch files matching this glob (repeatable); *.py always is."),
    click.option("--reload-exclude", multiple=True,
                 help="Ignore files or directories matching this glob (repeatable)."),
]

CONFIG_FILE_OPTION = click.option(
    "--config", "config_file", default=None,
    help="Read options from this TOML file instead of pyproject.toml's [tool.dartle].",
)


def server_options(func: F) -> F:
    """Decorate a command with every server option (shared by run and config)."""
    for option in reversed([*SERVER_OPTIONS, CONFIG_FILE_OPTION]):
        func = option(func)
    return func


def _given(ctx: click.Context, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The options set on the command line (not click's defaults), and their flag names."""
    flags: dict[str, Any] = {}
    names: dict[str, str] = {}
    for param in ctx.command.params:
        name = param.name
        if name is None or name not in options or name == "config_file":
            continue
        if ctx.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
            continue
        value = options[name]
        if isinstance(value, tuple):
            value = list(value)
        if name == "max_worker_memory" and isinstance(value, str):
            from dartle.config import parse_size

            try:
                value = parse_size(value)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param=param) from None
        flags[name] = value
        names[name] = param.opts[0] if param.opts else name
    return flags, names


@click.group()
@click.version_option(__version__, prog_name="dartle")
def main() -> None:
    """dartle: an ASGI server for HTTP/1.1 that runs any ASGI app."""


@main.command()
@click.argument("app", required=False)
@server_options
def run(app: str | None, config_file: str | None, **options: Any) -> None:
    """Serve APP, given as module:attribute (e.g. main:app).

    APP may also come from $DARTLE_APP or `app = "main:app"` in [tool.dartle].
    """
    ctx = click.get_current_context()
    try:
        flags, names = _given(ctx, options)
        if app is not None:
            flags["app"], names["app"] = app, "APP"
        resolved = _resolve(flags, names, config_file)
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    sys.exit(serve_config(resolved.config, resolved.warnings))


@main.command("config")
@click.argument("app", required=False)
@server_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each option's value and source.")
def config_command(app: str | None, config_file: str | None, as_json: bool, **options: Any) -> None:
    """Print the effective configuration and where each value came from."""
    from dartle.configsources import render

    ctx = click.get_current_context()
    try:
        flags, names = _given(ctx, options)
        if app is not None:
            flags["app"], names["app"] = app, "APP"
        resolved = _resolve(flags, names, config_file)
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        document = {
            "file": resolved.file,
            "warnings": resolved.warnings,
            "options": {
                name: {"value": getattr(resolved.config, name), "source": str(source)}
                for name, source in resolved.sources.items()
            },
        }
        click.echo(json.dumps(document, indent=2, default=repr))
    else:
        click.echo(render(resolved))


@main.command()
@click.argument("app", required=False)
@click.option("--factory", is_flag=True, help="APP is a factory: call it to get the app.")
@click.option("--app-dir", default=_d("app_dir"), show_default=True, help="Look for the app's module here.")
@click.option("--lifespan", type=click.Choice(["auto", "on", "off"]), default=_d("lifespan"),
              show_default=True)
@click.option("--interface", type=click.Choice(["auto", "asgi3", "asgi2", "wsgi"]),
              default=_d("interface"), show_default=True)
@click.option("--path", default="/", show_default=True, help="The path to GET.")
@click.option("--websocket", "websocket", default=None,
              help="Try a WebSocket handshake on this path (default: the first WebSocket route found).")
@click.option("--timeout", default=10.0, type=float, show_default=True,
              help="Seconds each step (startup, request, handshake, shutdown) may take.")
@CONFIG_FILE_OPTION
def check(app: str | None, config_file: str | None, path: str, websocket: str | None, timeout: float,
          **options: Any) -> None:
    """Try APP as a server would, and report what is wrong.

    Imports APP, runs its lifespan, sends it a GET (and a WebSocket handshake where it has
    a WebSocket route) through the strict ASGI checker. Exit status 1 on any problem.
    """
    from dartle.check import run_check

    ctx = click.get_current_context()
    try:
        flags, names = _given(ctx, options)
        if app is not None:
            flags["app"], names["app"] = app, "APP"
        config = _resolve(flags, names, config_file).config
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    sys.exit(run_check(config, path=path, websocket=websocket, timeout=timeout, echo=click.echo))


def _resolve(flags: dict[str, Any], names: dict[str, str], config_file: str | None) -> Any:
    from dartle.configsources import resolve

    return resolve(flags, flag_names=names, config_file=config_file)


def run_config(app: Any, options: dict[str, Any]) -> int:
    """`dartle.run(app, **options)`: the options as given and defaults (no env, no file)."""
    try:
        config = Config.from_options(app, **options)
    except (ValueError, TypeError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return 1
    return serve_config(config)


def serve_config(config: Config, warnings: list[str] | None = None) -> int:
    """Load the app and serve it, here or in workers; one-line errors for what the user got wrong."""
    from dartle.server.importer import AppLoadError, load_app
    from dartle.server.logs import configure_logging
    from dartle.server.serve import serve

    try:
        configure_logging(config.log_level, config.log_config)
        for warning in warnings or ():
            logging.getLogger("dartle.error").warning("%s", warning)
        if config.app is None:
            raise ValueError(
                "no app given: pass module:attribute (e.g. main:app), or set $DARTLE_APP "
                "or app in [tool.dartle]"
            )
        from dartle.server.tls import build_tls

        build_tls(config)  # a bad key, certificate or password fails here, naming the file
        if config.supervised:
            if not isinstance(config.app, str):
                raise ValueError(
                    "workers, reload and worker recycling start new processes, which import "
                    "the app: give it as 'module:attribute', not as an object"
                )
            from dartle.server.supervisor import Supervisor

            return Supervisor(config).run()
        asgi_app = load_app(
            config.app, config.factory, config.app_dir, config.interface, config.strict_asgi
        )
        return serve(config, asgi_app)
    except (AppLoadError, ValueError, TypeError, OSError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return 1
