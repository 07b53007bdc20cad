"""The one way snnc writes a file: checked target, missing folders made, atomic, the user's umask.

(Reading has one helper too: :func:`require_file`, the check every reader makes first.)

Every file snnc writes for a user (artifact, report, plot, NIR export, checkpoint, evaluation,
dumped IR) goes through :func:`atomic_target` or :func:`write_bytes`/:func:`write_text`:

* the destination is checked first (:func:`check_output_path`): an existing non-regular file (a
  directory, ``/dev/null``, a device, a FIFO) is refused, never replaced; missing parent folders are
  created, or a clean :class:`~snnc.errors.InputError` (exit 2) says why they cannot be;
* the data goes to a temporary file beside the destination, which is renamed over it only when
  everything was written, so an interrupted write (an error, Ctrl-C, SIGTERM) leaves the old file
  or nothing, never a partial one;
* the new file gets the permissions any program gives a new file (``0666`` less the umask), not
  the ``0600`` of a temporary file.
"""
from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

from snnc.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_path(path: PathLike, what: str = "output") -> str:
    """Return ``path`` as a string once it is safe to write there (see the module doc); raise otherwise."""
    p = os.fspath(path)
    if not p:
        raise InputError(f"empty {what} path", hint="give a file name")
    if os.path.lexists(p):
        st = os.stat(p) if os.path.exists(p) else os.lstat(p)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{what} path is a directory", file=p, hint="give a file name inside it")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} path exists and is not a regular file (a device, FIFO or socket); "
                             "refusing to replace it", file=p, hint="give the path of a regular file")
    parent = os.path.dirname(os.path.abspath(p))
    if os.path.lexists(parent) and not os.path.isdir(parent):
        raise InputError(f"the folder of the {what} path is not a directory", file=p)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the folder for the {what} ({e.strerror})", file=p,
                         hint="check the path and your permissions") from None
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write the {what}: the folder is not writable", file=p,
                         hint="choose another output path")
    return p


@contextmanager
def atomic_target(path: PathLike, what: str = "output") -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success, delete it on any failure."""
    p = check_output_path(path, what)
    d = os.path.dirname(os.path.abspath(p))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".snnc-", suffix=".part", dir=d)
    except OSError as e:
        raise InputError(f"cannot write the {what} ({e.strerror})", file=p) from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path: PathLike, data: bytes, what: str = "output") -> str:
    """Write ``data`` to ``path`` atomically (flushed to disk); return the path."""
    with atomic_target(path, what) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return os.fspath(path)


def write_text(path: PathLike, text: str, what: str = "output") -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    return write_bytes(path, text.encode("utf-8"), what)


def require_file(path: PathLike, what: str, hint: str = "") -> Path:
    """Return ``path`` as a Path if it is a file, else raise InputError naming it."""
    p = Path(path)
    if not p.is_file():
        default_hint = "check the path; snnc never downloads data sets, bring your own copy"
        raise InputError(f"{what} not found: file does not exist", file=str(p),
                         hint=hint or default_hint)
    return p


def replace_between(text: str, start: str, end: str, body: str, where: str = "the text") -> str:
    """Return ``text`` with everything between the markers ``start`` and ``end`` replaced by ``body`` on its own
    lines (the markers kept); :class:`~snnc.errors.InputError` naming ``where`` when a marker is missing."""
    if start not in text or end not in text:
        raise InputError(f"{where} lacks the markers {start} ... {end}", hint="put both markers back, then rerun")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"
