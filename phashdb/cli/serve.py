"""The commands of phashdb as a service: `serve`, `review`, and `decisions`. They need only
the context object (`phashdb.cli.common.Options`: `opts.db`, `opts.open()`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from phashdb.cli.common import (
    Command,
    PathName,
    Range,
    UsageError,
    argument,
    command,
    echo,
    given,
    option,
)

LOOPBACK = "127.0.0.1"


def _config(opts, *, uploads=None, token=None, max_bytes=None, max_pixels=None, workers=None,
            body_timeout=None):  # fmt: skip
    from phashdb.serve import ServeConfig

    return ServeConfig(db=opts.db, **given(
        uploads=Path(uploads).resolve() if uploads else None, token=token or None,
        max_bytes=max_bytes, max_pixels=max_pixels, workers=workers, body_timeout=body_timeout,
    ))  # fmt: skip


def _config_default(name: str) -> dict:
    """The service's own default for a setting, shown in the help."""
    import dataclasses

    from phashdb.serve import ServeConfig

    return {
        "default_shown": next(f.default for f in dataclasses.fields(ServeConfig) if f.name == name)
    }


def _needs_serve():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        from phashdb.errors import Error

        raise Error(f"the service needs its extra: pip install 'phashdb[serve]' ({e})") from e


def _text_file(name: str):
    """A file opened for reading (`-`: stdin), as click's File("r") opened it."""
    if name == "-":
        return open(sys.stdin.fileno(), closefd=False)  # closed by _token, stdin is not
    try:
        return open(name)  # read and closed by _token
    except OSError as e:
        raise ValueError(f"'{name}': {e.strerror}") from None


@command(
    option("--host", default=LOOPBACK, default_shown=LOOPBACK, help="Address to listen on."),
    option("--port", type=Range(int, 0, 65535), default=8080, default_shown=8080),
    # $PHASHDB_TOKEN is read by _token: a token on the command line is warned of.
    option(
        "--token", metavar="TOKEN",
        help="Bearer token every /v1 call must carry; required when listening beyond loopback. "
        "Prefer $PHASHDB_TOKEN or --token-file: a command line is visible to every local user.",
    ),
    option(
        "--token-file", type=_text_file, metavar="FILE",
        help="Read the bearer token from FILE (its first line).",
    ),
    option(
        "--uploads", type=PathName(file_okay=False), metavar="DIR",
        help="Folder where admitted uploads are kept (named by their SHA-256). Without it, only "
        "their hashes are stored.",
    ),
    option(
        "--max-bytes", type=Range(int, 1), settings=lambda: _config_default("max_bytes"),
        help="Largest request body accepted.",
    ),
    option("--max-pixels", type=Range(int, 1), help="Largest image, in pixels, hashed."),
    option("--workers", type=Range(int, 1, 64), help="Threads running index calls."),
    option(
        "--body-timeout", type=Range(float, 0, low_open=True),
        settings=lambda: _config_default("body_timeout"),
        help="Seconds an upload may send nothing before it is refused (408).",
    ),
    option(
        "--access-log", "--no-access-log", switch=True, default=True, default_shown="access-log",
        help="Log a line per request (to stdout).",
    ),
)  # fmt: skip
def serve(opts, host, port, token, token_file, uploads, max_bytes, max_pixels, workers,
          body_timeout, access_log) -> None:  # fmt: skip
    """Serve the index over HTTP: the API (OpenAPI document at /docs and /openapi.json) and
    the review page at /. Runs until Ctrl-C."""
    _needs_serve()
    opts.check(create=True)
    from phashdb.serve import serve as run

    token = _token(token, token_file)
    config = _config(opts, uploads=uploads, token=token, max_bytes=max_bytes,
                     max_pixels=max_pixels, workers=workers, body_timeout=body_timeout)  # fmt: skip
    run(config, host, port, log_level="debug" if opts.debug else "info", access_log=access_log)


def _token(token: str | None, token_file) -> str | None:
    """The token of --token-file, --token (warned about: `ps` shows it) or $PHASHDB_TOKEN."""
    from phashdb.errors import Error

    if token_file is not None:
        if token is not None:
            raise UsageError("give the token once: --token or --token-file")
        with token_file:
            token = token_file.readline().strip()
        if not token:
            raise Error(f"the token file {token_file.name} is empty: write the token in it")
        return token
    if token is None:  # not on the command line
        return os.environ.get("PHASHDB_TOKEN") or None
    if token:
        echo(
            "warning: a token given with --token is visible to every user of this machine "
            "(ps); use $PHASHDB_TOKEN or --token-file",
            err=True,
        )
    return token


@command(
    option("--port", type=Range(int, 0, 65535), default=0, help="Default: a free one."),
    option("--no-browser", flag=True, help="Print the page's address; open no browser."),
)
def review(opts, port, no_browser) -> None:
    """Open the review page: every duplicate group, to keep, trash, or mark "not duplicates"
    (with undo). Serves on loopback until Ctrl-C."""
    _needs_serve()
    opts.check(create=False)
    import secrets
    import webbrowser

    from phashdb.serve import Running

    # A token of its own: no other local user or web page can act on the index through it.
    # The address carries it once; the page keeps it in a cookie (see serve.app.review_page).
    token = secrets.token_urlsafe(24)
    with Running(_config(opts, token=token), LOOPBACK, port) as server:
        address = f"{server.url}/?token={token}"
        echo(f"review page: {address} (Ctrl-C to stop)")
        if not no_browser:
            webbrowser.open(address)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass


@command(option("--json", dest="as_json", flag=True, help="Print JSON."), name="list")
def decisions_list(opts, as_json) -> None:
    """Every pair marked not duplicates, oldest first."""
    with opts.open() as index:
        found = index.decisions()
    if as_json:
        echo(json.dumps([d.to_json() for d in found]))
        return
    for d in found:
        echo(f"{d.a}\t{d.b}")
    echo(f"{len(found)} pairs marked not duplicates", err=True)


@command(argument("a"), argument("b"), name="add")
def decisions_add(opts, a, b) -> None:
    """Mark images A and B (ids) as not duplicates."""
    with opts.open() as index:
        index.mark_not_duplicates([(a, b)])
    echo(f"{a} and {b}: not duplicates")


@command(
    argument("a", nargs="?"),
    argument("b", nargs="?"),
    option("--all", dest="everything", flag=True, help="Forget every decision."),
    name="forget",
)
def decisions_forget(opts, a, b, everything) -> None:
    """Forget that A and B are not duplicates (or, with --all, every such decision)."""
    if everything == bool(a or b) or (not everything and not (a and b)):
        raise UsageError("give the two ids of a pair (see `phashdb decisions list`), or --all")
    with opts.open() as index:
        pairs = [(d.a, d.b) for d in index.decisions()] if everything else [(a, b)]
        gone = index.forget_decisions(pairs) if pairs else 0
    if not everything and not gone:
        from phashdb.errors import Error

        raise Error(f"no decision about {a!r} and {b!r}: see `phashdb decisions list`")
    echo(f"forgot {gone} decision{'' if gone == 1 else 's'}")


decisions = Command(
    "decisions",
    None,
    help="Pairs of images you said are not duplicates: never matched or grouped again.",
    commands=(decisions_list, decisions_add, decisions_forget),
)

COMMANDS = [serve, review, decisions]
