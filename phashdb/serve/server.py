"""Running the application with uvicorn: in the foreground (`phashdb serve`), or in a thread
on a free loopback port (`phashdb review`, the tests, the benchmark)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from ..errors import Error
from .app import ServeConfig, create_app, is_loopback


def check_exposure(host: str, config: ServeConfig) -> None:
    """Refuse to listen beyond loopback without a token: anyone who reaches the port could
    read, add and trash images."""
    if not is_loopback(host) and not config.token:
        raise Error(
            f"listening on {host} (beyond this machine) needs a bearer token: give --token or "
            "set $PHASHDB_TOKEN, or listen on 127.0.0.1"
        )


def serve(config: ServeConfig, host: str = "127.0.0.1", port: int = 8080, *, log_level="info"):
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    check_exposure(host, config)
    server = uvicorn.Server(_uvicorn_config(config, log_level))
    server.run(sockets=[_bind(host, port)])
    if not server.started:
        raise Error(f"the server on {host}:{port} did not start (see the log above)")


class Running:
    """A server in a background thread; `url` is where it listens. Stop with `stop()` (or use
    it as a context manager)."""

    def __init__(self, config: ServeConfig, host: str = "127.0.0.1", port: int = 0,
                 *, log_level: str = "warning", timeout: float = 60.0) -> None:  # fmt: skip
        check_exposure(host, config)
        sock = _bind(host, port)
        bound_host, bound_port = sock.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self._server = uvicorn.Server(_uvicorn_config(config, log_level))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="phashdb-serve", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise Error(f"the server on {self.url} did not start (see the log)")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()

    def wait(self) -> None:
        """Until the server stops."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> Running:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _uvicorn_config(config: ServeConfig, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(config), log_level=log_level, access_log=log_level == "debug",
        lifespan="on", server_header=False,
    )  # fmt: skip


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise Error(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.listen(2048)
    return sock
