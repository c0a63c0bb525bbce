"""Running the application with uvicorn: in the foreground (`phashdb serve`), or in a thread
on a free loopback port (`phashdb review`, the tests, the benchmark)."""

from __future__ import annotations

import logging
import re
import threading
import time

import uvicorn

from ..errors import Error
from .app import ServeConfig, create_app
from .guard import is_loopback


def check_exposure(host: str, config: ServeConfig) -> None:
    """Refuse to listen beyond loopback without a token: anyone who reaches the port could
    read, add and trash images."""
    if not is_loopback(host) and not config.token:
        raise Error(
            f"listening on {host} (beyond this machine) needs a bearer token: give "
            "--token-file or set $PHASHDB_TOKEN, or listen on 127.0.0.1"
        )


def serve(config: ServeConfig, host: str = "127.0.0.1", port: int = 8080, *, log_level="info",
          access_log: bool = True):  # fmt: skip
    """Serve until interrupted (Ctrl-C or SIGTERM), logging a line per request if `access_log`."""
    check_exposure(host, config)
    server = uvicorn.Server(_uvicorn_config(config, host, port, log_level, access_log))
    try:
        server.run()
    except SystemExit:  # uvicorn's way of saying it could not start (it logged why)
        pass
    if not server.started:
        raise Error(f"the server on {host}:{port} did not start (see the log above)")


class Running:
    """A server in a background thread; `url` is where it listens. Stop with `stop()` (or use
    it as a context manager)."""

    def __init__(self, config: ServeConfig, host: str = "127.0.0.1", port: int = 0,
                 *, log_level: str = "warning", timeout: float = 60.0) -> None:  # fmt: skip
        check_exposure(host, config)
        self._server = uvicorn.Server(_uvicorn_config(config, host, port, log_level))
        self._thread = threading.Thread(target=self._server.run, name="phashdb-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise Error(f"the server on {host}:{port} did not start (see the log)")
            time.sleep(0.02)
        # Port 0 asks for a free port: the one given is the listening socket's. (uvicorn binds
        # it: a socket bound here and handed over answered every keep-alive request ~40 ms late.)
        bound = self._server.servers[0].sockets[0].getsockname()
        self.url = f"http://{'[' + bound[0] + ']' if ':' in bound[0] else bound[0]}:{bound[1]}"

    @property
    def app(self):
        """The ASGI application served (its `state.actions` holds the tests' hooks)."""
        return self._server.config.app

    def stop(self) -> None:
        """Stop serving: requests under way are given `GRACE` seconds (uvicorn's graceful
        shutdown), then the server is told to quit without waiting for anything."""
        self._server.should_exit = True
        self._thread.join(GRACE + 5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join()

    def wait(self) -> None:
        """Until the server stops."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> Running:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _HideTokens(logging.Filter):
    """Access lines without the token of a page's address (`/?token=...`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) > 2:
            path = _TOKEN.sub(r"\1token=...", str(record.args[2]))
            record.args = (*record.args[:2], path, *record.args[3:])
        return True


GRACE = 10  # seconds requests under way get when the server is told to stop

_TOKEN = re.compile(r"([?&])token=[^&]*")
_HIDE_TOKENS = _HideTokens()


def _uvicorn_config(config: ServeConfig, host: str, port: int, log_level: str,
                    access_log: bool | None = None) -> uvicorn.Config:  # fmt: skip
    made = uvicorn.Config(
        create_app(config), host=host, port=port, log_level=log_level,
        access_log=log_level == "debug" if access_log is None else access_log,
        lifespan="on", server_header=False,
        # Longer than clients' and proxies' usual idle expiry (httpx's 5 s, uvicorn's default
        # here too): a server closing an idle connection just as the client reuses it fails
        # that request (a read error), which an upload service would see under load.
        timeout_keep_alive=30,
        # A client that never finishes (a stalled upload, a connection left open) must not
        # hold the server up when it is told to stop: what runs is cancelled after GRACE s.
        timeout_graceful_shutdown=GRACE,
    )  # fmt: skip
    logging.getLogger("uvicorn.access").addFilter(_HIDE_TOKENS)
    return made
