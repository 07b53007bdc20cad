"""Where data and caches live: repository root, default data directory and cache directory.

* data directory: env ``SNNC_DATA`` if set, else ``<repo>/../shared/data``;
* cache directory: env ``SNNC_CACHE`` if set, else ``<repo>/.cache``.

``<repo>`` is the first ancestor of this file that holds ``pyproject.toml`` or ``.git``
(falling back to three levels above the ``snnc`` package).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from snnc.errors import InputError
from snnc.files import require_file  # noqa: F401  (data modules import it from here)

PathLike = Union[str, "os.PathLike[str]"]

#: Environment variable overriding the data directory.
ENV_DATA = "SNNC_DATA"
#: Environment variable overriding the cache directory.
ENV_CACHE = "SNNC_CACHE"


def repo_root() -> Path:
    """Return the repository root found from this package file's location."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() or (parent / ".git").exists():
            return parent
    # snnc/models/data/paths.py -> parents[3] is the directory holding ``snnc``.
    return here.parents[3]


def default_data_dir() -> Path:
    """Return the data directory: ``$SNNC_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return (repo_root().parent / "shared" / "data").resolve()


def default_cache_dir() -> Path:
    """Return the cache directory: ``$SNNC_CACHE`` or ``<repo>/.cache``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return repo_root() / ".cache"


def resolve_cache_dir(cache_dir: Optional[PathLike]) -> Path:
    """Return ``cache_dir`` (or the default), created if missing."""
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create cache directory ({exc})", file=str(path),
                         hint=f"set {ENV_CACHE} to a writable directory") from exc
    return path


def require_dir(path: PathLike, what: str, hint: str = "") -> Path:
    """Return ``path`` as a Path if it is a directory, else raise InputError naming it."""
    p = Path(path)
    if not p.is_dir():
        default_hint = (f"set {ENV_DATA} to the folder that holds the data sets, or pass the "
                        f"path explicitly; nothing is ever downloaded")
        raise InputError(f"{what} not found: directory does not exist", file=str(p),
                         hint=hint or default_hint)
    return p


def dir_fingerprint(files: Iterable[Path]) -> dict[str, int]:
    """Return a cheap fingerprint (count, total bytes, newest mtime in ns) of ``files``."""
    n = 0
    total = 0
    newest = 0
    for f in files:
        st = f.stat()
        n += 1
        total += st.st_size
        newest = max(newest, st.st_mtime_ns)
    return {"n_files": n, "total_bytes": total, "newest_mtime_ns": newest}


def cache_key(params: dict[str, Any]) -> str:
    """Return a short stable hash of a JSON-serialisable parameter dict."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha1(path: PathLike) -> str:
    """Return the SHA-1 hex digest of a (small) file's bytes."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()
