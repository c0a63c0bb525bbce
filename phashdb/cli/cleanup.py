"""The commands that find duplicates already stored and deal with them: `dedupe` (and its
`--apply`), `report`, `watch` and `trash`."""

from __future__ import annotations

import json
import os
import sys
import time

from phashdb.cli.common import (
    EXIT_ERROR,
    Choice,
    Command,
    Options,
    PathName,
    UsageError,
    argument,
    command,
    confirm,
    default_of,
    each,
    echo,
    given,
    json_option,
    keep_option,
    library,
    option,
    progress,
    runner_option,
    say,
    shown,
    style,
    threshold_option,
    verdict_line,
)


@command(
    threshold_option,
    runner_option,
    option(
        "--apply",
        dest="action",
        settings=lambda: {"type": Choice(library("phashdb.apply", "ACTIONS"))},
        help="Keep one image of each group; move the others to the trash, or replace them by "
        "a hard or symbolic link to it.",
    ),
    keep_option,
    option("--dry-run", flag=True, help="With --apply: say what would be done, do nothing."),
    json_option,
)
def dedupe(opts: Options, threshold, runner, action, rule, dry_run, as_json) -> None:
    """Every group of near-duplicates already in the index (with --runner: as the MapReduce
    dedupe job); with --apply, keep one image of each and deal with the rest."""
    if not action and (dry_run or rule is not None):
        from phashdb.keep import BEST  # here: listing the groups needs none of phashdb.keep

        if dry_run or rule != BEST:
            raise UsageError("--keep and --dry-run go with --apply")
    with opts.open() as index:
        if as_json and not runner and not action:
            from phashdb import group_cache

            echo(group_cache.dedupe_json(index, threshold))
            return
        if runner:
            from phashdb.mr import run as mr

            groups = mr.dedupe(index, runner, threshold)
        else:
            from phashdb import group_cache

            groups = group_cache.dedupe(index, threshold)
        if action:
            from phashdb.keep import BEST

            return _apply(opts, index, groups, action, rule or BEST, dry_run, as_json)
    if as_json:
        echo(json.dumps([g.to_json() for g in groups]))
        return
    for n, group in enumerate(groups, 1):
        echo(f"group {n}: {len(group.images)} images")
        for image in group.images:
            echo(f"  {shown(image.path or image.id)}")
    echo(f"{len(groups)} groups, {sum(len(g.images) for g in groups)} images")


@command(
    option(
        "--out",
        "-o",
        type=PathName(dir_okay=False),
        default="report.html",
        default_shown="report.html",
        help="Where to write the page.",
    ),
    threshold_option,
    keep_option,
)
def report(opts: Options, out, threshold, rule) -> None:
    """Write an HTML page of every duplicate group: thumbnails side by side, the suggested
    keeper, the bytes removing the rest frees. Self-contained: open it anywhere."""
    from phashdb import report as page
    from phashdb.errors import Error
    from phashdb.keep import BEST

    rule = rule or BEST
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):  # said before the work, not after it
        raise Error(shown(f"cannot write the report to {out}: no folder {folder}"))
    with opts.open() as index:
        groups = index.dedupe(threshold)
        with progress(opts, sum(len(g.images) for g in groups), "thumbnails") as bar:
            html = page.build(
                groups,
                source=shown(index.store.url),
                threshold=index.threshold if threshold is None else threshold,
                rule=rule,
                progress=bar.update,
            )
    try:
        page.write(out, html)
    except OSError as e:
        raise Error(shown(f"cannot write the report to {out}: {e.strerror or e}")) from e
    freed = sum(p.freed for p in _plans(groups, rule))
    echo(f"{out}: {len(groups)} groups, {page.human_bytes(freed)} reclaimable")


def _watch_default() -> str:
    from phashdb.watch import watch

    return default_of(watch, "on_duplicate")


@command(
    argument("folder", type=PathName(exists=True, file_okay=False)),
    option(
        "--on-duplicate",
        settings=lambda: {
            "type": Choice(library("phashdb.watch", "ON_DUPLICATE")),
            "default_shown": _watch_default(),
        },
        help="What to do with a duplicate: keep it (stored as a known duplicate), move it to "
        "the trash, or skip it (left where it is, not stored).",
    ),
)
def watch(opts: Options, folder, on_duplicate) -> None:
    """Give every image file that arrives in FOLDER its verdict, as `add` does, until stopped
    (Ctrl-C or SIGTERM). One line per image on stdout, a summary at the end."""
    import signal
    import threading

    from phashdb.watch import watch as run

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with opts.open(create=True) as index:
        summary = run(
            index,
            folder,
            stop=stop,
            **given(on_duplicate=on_duplicate),
            report=lambda seen: echo(_seenverdict_line(seen)),
            ready=lambda: echo(f"watching {folder} (Ctrl-C to stop)", err=True),
        )
    echo(
        f"stopped: {summary.stored} unique, {summary.duplicates} duplicates ({summary.kept} "
        f"kept, {summary.trashed} trashed, {summary.skipped} skipped), {summary.failed} failed"
        + (f", {summary.moved} moved (records followed)" if summary.moved else "")
        + (f", {summary.pending} still arriving" if summary.pending else "")
    )


@command(json_option, name="list")
def trash_list(opts: Options, as_json) -> None:
    """What is in the trash, oldest first."""
    from phashdb.report import human_bytes
    from phashdb.trash import list_trash

    with opts.open() as index:
        items, where = list_trash(index.trash), index.trash
    if as_json:
        echo(json.dumps([t.to_json() for t in items]))
        return
    for t in items:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.when))
        size = human_bytes(t.size) if t.size is not None else "?"
        echo(f"{t.id}  {when}  {size:>9}  {shown(t.original)}")
    total = human_bytes(sum(t.size or 0 for t in items))
    echo(f"{len(items)} files, {total}, in {where}")


@command(
    argument("ids", nargs="*"),
    option("--all", dest="everything", flag=True, help="Restore everything in the trash."),
    option("--yes", "-y", flag=True, help="With --all: do not ask for confirmation."),
    name="restore",
)
def trash_restore(opts: Options, ids, everything, yes) -> None:
    """Move trashed files back where they were (and into the index, if they were stored)."""
    from phashdb.trash import list_trash, restore

    if bool(ids) == everything:
        raise UsageError("give the IDs to restore (see `phashdb trash list`), or --all")
    with opts.open() as index:
        if everything:
            ids = [t.id for t in list_trash(index.trash)]
            if ids and not yes and sys.stdin.isatty():
                confirm(f"Restore all {len(ids)} files in {index.trash} where they came from?")
        failed = each(
            opts,
            ids,
            lambda id: restore(index.trash, id, index=index),
            lambda _, item: echo(
                f"restored {shown(item.original)}" + (" (stored)" if item.image_id else "")
            ),
        )
    if failed:
        sys.exit(EXIT_ERROR)


@command(option("--yes", "-y", flag=True, help="Do not ask for confirmation."), name="empty")
def trash_empty(opts: Options, yes) -> None:
    """Delete everything in the trash for good."""
    from phashdb.errors import TrashError
    from phashdb.report import human_bytes
    from phashdb.trash import empty, entries, list_trash

    with opts.open() as index:
        count = len(entries(index.trash))  # unreadable entries too: they are trash all the same
        if not count:
            echo("the trash is empty")
            return
        size = human_bytes(sum(t.size or 0 for t in list_trash(index.trash)))
        files = f"{count} file" + ("s" if count != 1 else "")
        if not yes and not sys.stdin.isatty():
            raise TrashError(
                f"not deleting the {files} in {index.trash} without a terminal to ask: "
                "give --yes to delete them for good"
            )
        if not yes:
            confirm(f"Delete {files} ({size}) in {index.trash} for good?")
        try:
            gone, error = empty(index.trash), None
        except TrashError as e:  # the rest were deleted: say so, then what was not
            gone, error = e.deleted, e
    echo(f"deleted {len(gone)} files, {human_bytes(sum(t.size or 0 for t in gone))}")
    if error:
        echo(f"phashdb: error: {shown(error)}", err=True)
        sys.exit(EXIT_ERROR)


trash_group = Command(
    "trash",
    None,
    help="The trash: list, restore or delete for good what was moved there.",
    commands=(trash_list, trash_restore, trash_empty),
)


def _plans(groups, rule: str):
    from phashdb.keep import plans

    return plans(groups, rule)


def _apply(opts: Options, index, groups, action: str, rule: str, dry_run: bool, as_json: bool):
    """dedupe --apply: keep each group's keeper, act on the rest; exit 2 if any failed."""
    from phashdb.apply import apply
    from phashdb.keep import bytes_freed
    from phashdb.report import human_bytes

    plans = _plans(groups, rule)
    with progress(opts, len(plans), "applying") as bar:
        done = apply(index, plans, action, dry_run=dry_run, progress=bar.update)
    for d in done:
        if d.error:
            echo(f"phashdb: error: {shown(d.error)}", err=True)
        else:
            what = f"would {action}" if dry_run else f"{action}ed"
            say(as_json, shown(f"{what} {d.image.path} (keeping {d.keeper.path})"))
    freed = bytes_freed(d.image for d in done if not d.error)
    failed = sum(1 for d in done if d.error)
    if as_json:
        echo(
            json.dumps(
                {
                    "dry_run": dry_run,
                    "action": action,
                    "freed": freed,
                    "done": [{**d.to_json(), "keeper": d.keeper.path} for d in done],
                }
            )
        )
    else:
        echo(
            f"{len(plans)} groups, {len(done) - failed} files: "
            f"{'would free' if dry_run else 'freed'} {human_bytes(freed)}"
            + (f", {failed} failed" if failed else "")
        )
    if failed:
        sys.exit(EXIT_ERROR)


def _seenverdict_line(seen) -> str:
    """One line per file `watch` saw, coloured by verdict on a terminal."""
    if seen.action == "failed":
        return style(shown(f"{seen.path}: failed: {seen.detail}"), "red")
    if seen.action == "moved":  # a stored image renamed: its record followed it
        return style(shown(f"{seen.path}: {seen.detail}, its record follows it"), "green")
    line = verdict_line(seen.path, seen.verdict)
    if seen.action == "trashed":
        line += f", moved to the trash (restore: phashdb trash restore {seen.detail})"
    elif seen.action == "skipped":
        line += ", skipped"
    if seen.detail and seen.action != "trashed":  # a stored one: the record it replaced
        line += f" ({shown(seen.detail)})"
    return style(line, "green" if seen.action == "stored" else "yellow")
