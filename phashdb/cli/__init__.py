"""The `phashdb` command: parse, call the library, format. This module assembles the group;
the commands live in one module per kind (`index_cmds`: fill and ask the index; `cleanup`:
the duplicates already stored; `admin`: look after the index; `serve`: the service), all
sharing `common` and nothing else of each other."""

from __future__ import annotations

import gc
import logging
import os
import sys

# numpy's OpenBLAS starts a thread per core that spins while the first waits: for the 8x32
# matrices hashing multiplies that is pure cost, a third of a re-run's CPU time, and in every
# ingest worker it competes with the other workers. Set before numpy is first imported; a
# user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from phashdb.cli import admin, cleanup, index_cmds, serve
from phashdb.cli.common import EXIT_CODES, EXIT_OK, Cli, Options, reader_gone


@click.group(cls=Cli, epilog=EXIT_CODES)
@click.option(
    "--db",
    envvar="PHASHDB_URL",
    metavar="URL",
    help="The index: a folder for the embedded index (default ~/.local/share/phashdb) or "
    "hbase://HOST:PORT/TABLE. Also read from $PHASHDB_URL.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what is being done to stderr.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="phashdb")
@click.pass_context
def cli(ctx: click.Context, db, verbose, quiet, debug) -> None:
    """Find near-duplicate images by perceptual hash (pHash)."""
    if verbose or debug:
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.INFO, format="phashdb: %(message)s"
        )
    ctx.obj = Options(db, debug, quiet)


for _command in (
    index_cmds.init, index_cmds.ingest, index_cmds.pack, index_cmds.check, index_cmds.add,
    index_cmds.similar, cleanup.dedupe, admin.stats, admin.remove, admin.fsck, cleanup.report,
    cleanup.watch, cleanup.trash_group, *serve.COMMANDS,
):  # fmt: skip
    cli.add_command(_command)


def main() -> None:
    code = EXIT_OK
    try:
        cli(prog_name="phashdb")
    except SystemExit as e:
        code = e.code
    try:  # what is still buffered (the output of a command that ended without error)
        sys.stdout.flush()
    except BrokenPipeError:
        if reader_gone():
            code = EXIT_OK
    # The command is done. What the interpreter's exit would still do is collect every object
    # numpy, Pillow and click made, in full collections (~15 ms of a 0.15 s `check`; its
    # memory goes back with the process either way). Frozen, they are left out of those; exit
    # handlers, the streams' flush and objects freed by their last reference run as before.
    gc.freeze()
    sys.exit(code)
