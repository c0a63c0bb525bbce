"""The commands of phashdb as a service: `serve`, `review`, and `decisions`. They need only
the context object (`phashdb.cli.common.Options`: `opts.db`, `opts.open()`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from phashdb.cli.common import FromLibrary, given

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


@click.command()
@click.option("--host", default=LOOPBACK, show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--token", envvar="PHASHDB_TOKEN", metavar="TOKEN",
    help="Bearer token every /v1 call must carry; required when listening beyond loopback. "
    "Prefer $PHASHDB_TOKEN or --token-file: a command line is visible to every local user.",
)  # fmt: skip
@click.option(
    "--token-file", type=click.File("r"), metavar="FILE",
    help="Read the bearer token from FILE (its first line).",
)  # fmt: skip
@click.option(
    "--uploads", type=click.Path(file_okay=False), metavar="DIR",
    help="Folder where admitted uploads are kept (named by their SHA-256). Without it, only "
    "their hashes are stored.",
)  # fmt: skip
@click.option(
    "--max-bytes", type=click.IntRange(1), cls=FromLibrary,
    settings=lambda: _config_default("max_bytes"),
    help="Largest request body accepted.",
)  # fmt: skip
@click.option("--max-pixels", type=click.IntRange(1), help="Largest image, in pixels, hashed.")
@click.option("--workers", type=click.IntRange(1, 64), help="Threads running index calls.")
@click.option(
    "--body-timeout", type=click.FloatRange(0, min_open=True), cls=FromLibrary,
    settings=lambda: _config_default("body_timeout"),
    help="Seconds an upload may send nothing before it is refused (408).",
)  # fmt: skip
@click.option(
    "--access-log/--no-access-log", default=True, show_default=True,
    help="Log a line per request (to stdout).",
)  # fmt: skip
@click.pass_obj
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
    """The token of --token-file, $PHASHDB_TOKEN or --token (warned about: `ps` shows it)."""
    from phashdb.errors import Error

    on_command_line = (
        click.get_current_context().get_parameter_source("token")
        is click.core.ParameterSource.COMMANDLINE
    )
    if token_file is not None:
        if on_command_line:
            raise click.UsageError("give the token once: --token or --token-file")
        token = token_file.readline().strip()
        if not token:
            raise Error(f"the token file {token_file.name} is empty: write the token in it")
        return token
    if token and on_command_line:
        click.echo(
            "warning: a token given with --token is visible to every user of this machine "
            "(ps); use $PHASHDB_TOKEN or --token-file",
            err=True,
        )
    return token


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Default: a free one.")
@click.option("--no-browser", is_flag=True, help="Print the page's address; open no browser.")
@click.pass_obj
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
        click.echo(f"review page: {address} (Ctrl-C to stop)")
        if not no_browser:
            webbrowser.open(address)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass


@click.group()
def decisions() -> None:
    """Pairs of images you said are not duplicates: never matched or grouped again."""


@decisions.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def decisions_list(opts, as_json) -> None:
    """Every pair marked not duplicates, oldest first."""
    with opts.open() as index:
        found = index.decisions()
    if as_json:
        click.echo(json.dumps([d.to_json() for d in found]))
        return
    for d in found:
        click.echo(f"{d.a}\t{d.b}")
    click.echo(f"{len(found)} pairs marked not duplicates", err=True)


@decisions.command(name="add")
@click.argument("a")
@click.argument("b")
@click.pass_obj
def decisions_add(opts, a, b) -> None:
    """Mark images A and B (ids) as not duplicates."""
    with opts.open() as index:
        index.mark_not_duplicates([(a, b)])
    click.echo(f"{a} and {b}: not duplicates")


@decisions.command(name="forget")
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("--all", "everything", is_flag=True, help="Forget every decision.")
@click.pass_obj
def decisions_forget(opts, a, b, everything) -> None:
    """Forget that A and B are not duplicates (or, with --all, every such decision)."""
    if everything == bool(a or b) or (not everything and not (a and b)):
        raise click.UsageError(
            "give the two ids of a pair (see `phashdb decisions list`), or --all"
        )
    with opts.open() as index:
        pairs = [(d.a, d.b) for d in index.decisions()] if everything else [(a, b)]
        gone = index.forget_decisions(pairs) if pairs else 0
    if not everything and not gone:
        from phashdb.errors import Error

        raise Error(f"no decision about {a!r} and {b!r}: see `phashdb decisions list`")
    click.echo(f"forgot {gone} decision{'' if gone == 1 else 's'}")


COMMANDS = [serve, review, decisions]
