"""Write a file all at once or not at all: a temporary sibling, renamed into place at the end.

A failed or interrupted write leaves the old file (or none), never half of a new one.
:func:`replace_path` is the last step for directories (bundles, exports, scored datasets).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed.

    A missing parent directory is made first (as ``train -o`` makes a bundle's);
    a ``path`` that is a directory is an :class:`InputError`, before anything
    is written (the temporary file's name would otherwise be in the message).
    """
    path = check_file_target(path)
    if is_special(path):  # a device, a named pipe, /dev/stdout: never renamed over (it was replaced by a file)
        handle, name = tempfile.mkstemp(suffix=path.suffix, prefix=".mlkiln-")
        os.close(handle)
        tmp = Path(name)
        try:
            yield tmp  # written whole first (a retried write would reach a pipe twice), then sent in one go
            with open(tmp, "rb") as source, open(path, "ab") as target:  # appended: `>>` and `>` alike
                shutil.copyfileobj(source, target, 1 << 20)
        finally:
            tmp.unlink(missing_ok=True)
        return
    path = followed(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        if path.exists():  # the replaced file's permissions: a file kept private (0600) stays private
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def is_special(path: str | os.PathLike) -> bool:
    """Whether ``path`` (or what a link there points to) is neither a file nor a folder: a device such as
    /dev/null, a named pipe or a socket; or a name under /dev or /proc (/dev/stdout sent to a file is that
    file's descriptor). Renaming a file over one replaced it (/dev/full became a CSV file)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing, or a link to nothing
        return False
    if os.path.abspath(path).startswith(("/dev/", "/proc/")) or os.path.realpath(path).startswith("/proc/"):
        return True
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def followed(path: str | os.PathLike) -> Path:
    """``path``, or the path a symbolic link there points to: an output written through a link replaces
    the link's target, and the link stays (replacing the link itself would leave the target as it was,
    and the old link beside the new output)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_file_target(path: str | os.PathLike) -> Path:
    """``path`` as a file to write, or an :class:`InputError` when it is a folder or would be under a file."""
    path = Path(path)
    if str(path) == "-":  # a file named "-" was written where standard output was meant
        raise InputError("'-' (standard output) takes only the tables of predict and example; "
                         "give the name of a file to write")
    if path.is_dir():
        raise InputError(f"{path} is a directory; give the name of a file to write")
    if not is_special(path):
        check_writable_folder(path)
    return path


def check_writable_folder(path: str | os.PathLike) -> None:
    """An :class:`InputError` when nothing can be written where ``path`` would go: its nearest existing folder is
    a file, or refuses a new file (read-only, immutable, /proc). Said before any work, not after training."""
    path = Path(path)
    folder = next((p for p in path.absolute().parents if p.exists()), None)
    if folder is None:
        return
    if not folder.is_dir():
        raise InputError(f"{folder} is a file, not a folder: {path} cannot be written there")
    try:  # the only sure test: root passes every permission check, and /proc or an immutable folder still refuse
        handle, probe = tempfile.mkstemp(prefix=".mlkiln-probe-", dir=folder)
    except OSError as error:
        raise InputError(f"{path} cannot be written: {folder} refuses new files ({error.strerror})") from None
    os.close(handle)
    os.unlink(probe)


def page_and_json(path: str | os.PathLike, inputs=()) -> tuple[Path, Path]:
    """A report page's path and its JSON's (the same name, ``.json``); a page named ``.json`` would be both.
    Neither may be one of ``inputs`` (:func:`check_apart`), and either one, if it exists, must be mlkiln's
    (:func:`check_ours`)."""
    path = check_page_name(check_file_target(path))
    pages = (path, path.with_suffix(".json"))
    check_apart(pages, inputs)
    for page in pages:
        check_ours(page, written_page, "a page or JSON file")
    return pages


def check_page_name(path: Path) -> Path:
    """A report page is named ``.html`` (or ``.htm``): a page replaces what is at its path, and under any other
    name that was a data file (``report -o week.csv`` turned the data into a page)."""
    if path.suffix.lower() == ".json":
        raise InputError(f"the report {path} is named .json, where its numbers go (a .json beside the page); "
                         "name the page .html")
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"the report {path} is not named .html: a page written there would replace a file that "
                         "is no report; name the page .html")
    return path


def check_replaceable(path: Path, markers: tuple[str, ...]) -> None:
    """Refuse to replace (even with ``--force``) a directory mlkiln did not write: only an empty one, one holding
    a file of ``markers`` (:data:`mlkiln.options.OUTPUT_MARKERS`) or a folder of scored parts (part-*.parquet
    files only). ``train -o docs --force`` deleted a folder of the user's files."""
    if not path.is_dir() or any((path / marker).is_file() for marker in markers):
        return
    theirs = next((p for p in path.iterdir() if not (p.is_file() and p.name.startswith("part-")
                                                     and p.suffix == ".parquet")), None)
    if theirs is not None:
        raise InputError(f"{path} holds files mlkiln did not write ({theirs.relative_to(path)}); --force replaces "
                         "only a bundle, an MLflow model, scored parts or an empty directory: choose another output")


def check_ours(path: str | os.PathLike, ours, what: str, force: bool | None = None) -> None:
    """Refuse to replace an existing file that ``ours(path)`` says mlkiln did not write, unless ``force`` (None:
    the command has no ``--force``).

    ``mlkiln example diamonds -o iris.csv`` replaced the user's training data without a word; a page, JSON or
    scored table mlkiln wrote is replaced as before (running a command again must work).
    """
    path = Path(path)
    if force or not path.is_file() or is_special(path):
        return
    try:
        mine = bool(ours(path))
    except Exception:  # noqa: BLE001 - unreadable as ours: it is theirs
        mine = False
    if not mine:
        raise InputError(f"{path} exists and is not {what} mlkiln wrote; choose another name, or "
                         + ("replace it with --force" if force is not None else "remove it first"))


def head_bytes(path: Path, size: int = 4096) -> bytes:
    """The first ``size`` bytes of a file."""
    with open(path, "rb") as handle:
        return handle.read(size)


def written_page(path: Path) -> bool:
    """Whether ``path`` is a page or JSON file of mlkiln's (a report, evaluation or drift page): it says so early."""
    return b"mlkiln" in head_bytes(path)


def check_apart(outputs, inputs) -> None:
    """Refuse ``outputs`` (files or folders to write) that are, or hold, one of ``inputs`` (the files being read).

    Paths are compared resolved: a symbolic link to the data is the data.
    Writing there would replace the data with the output, losing it.
    """
    for output in outputs:
        for item in inputs:
            if holds(output, item):
                raise InputError(f"the output {output} must not be, or hold, one of the input files ({item}); "
                                 "choose another name")


def holds(container: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether replacing ``container`` would delete ``path``: it is ``path`` or one of its parent directories."""
    container, path = Path(container).resolve(), Path(path).resolve()
    return container == path or container in path.parents


def replace_path(new: Path, path: Path) -> None:
    """Rename ``new`` (a file or directory) to ``path``, replacing what is there only at the last moment.

    SIGINT and SIGTERM wait between the two renames, so an interrupt leaves
    the old one or the new one, never neither; a failed rename puts the old
    one back. The old one is removed afterwards.
    """
    old = path.with_name(f".{path.name}.old-{os.getpid()}") if path.exists() else None
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        if old is not None:
            os.replace(path, old)
        try:
            os.replace(new, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)
            raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() and not old.is_symlink() else old.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, content: bytes) -> None:
    """Write ``content`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def write_all_atomic(contents: dict) -> None:
    """Write several files (``{path: bytes}``) as one: every one is written to a temporary sibling first, and
    renamed into place only when all are, so a full disk leaves none of them new (a report's HTML and JSON)."""
    with contextlib.ExitStack() as stack:  # on the way out, each rename; on an error, each temporary removed
        for path, content in contents.items():
            stack.enter_context(atomic_path(path)).write_bytes(content)
