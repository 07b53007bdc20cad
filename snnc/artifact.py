"""The versioned, self-checking artifact file: a manifest plus the target's payload blobs.

Layout (all integers little-endian)::

    b"SNNCART\\0"  u32 format_version  u64 manifest_len  manifest (canonical JSON, UTF-8)
    payload blobs, concatenated in the order the manifest lists them
    sha256 of everything above (32 bytes)

The manifest lists each blob's name, size and sha256. Writing is deterministic (same graph and
options give the same bytes: no timestamps, sorted keys) and atomic (temporary file + rename).
"""
from __future__ import annotations

import hashlib
import io
import json
import struct
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from snnc.errors import ArtifactError, InputError
from snnc.files import atomic_target, write_bytes  # noqa: F401  (atomic_target: the historical import path)

MAGIC = b"SNNCART\x00"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sIQ")


def canonical_json(obj: Any) -> bytes:
    """Return ``obj`` as canonical JSON bytes (sorted keys, no spaces, no NaN)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_json_default).encode()


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def array_bytes(a: np.ndarray) -> bytes:
    """Return ``a`` in ``.npy`` format (deterministic)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a, order="C"), allow_pickle=False)
    return buf.getvalue()


def bytes_array(b: bytes) -> np.ndarray:
    """Return the array stored by :func:`array_bytes`."""
    return np.lib.format.read_array(io.BytesIO(b), allow_pickle=False)


def pack_arrays(arrays: Mapping[str, np.ndarray], prefix: str = "arrays/") -> Dict[str, bytes]:
    """Return ``{prefix + key + '.npy': npy bytes}`` for every array."""
    return {f"{prefix}{k}.npy": array_bytes(v) for k, v in sorted(arrays.items())}


def unpack_arrays(payload: Mapping[str, bytes], prefix: str = "arrays/") -> Dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays`."""
    return {k[len(prefix):-4]: bytes_array(v) for k, v in payload.items() if k.startswith(prefix) and k.endswith(".npy")}


@dataclass
class Artifact:
    """A compiled program: ``manifest`` (target, versions, dt, hashes, options, report) and ``payload``."""

    manifest: Dict[str, Any]
    payload: Dict[str, bytes]

    @property
    def target(self) -> str:
        """Return the target name."""
        return str(self.manifest["target"])

    @property
    def report(self) -> Dict[str, Any]:
        """Return the compile report."""
        return self.manifest.get("report", {})

    def to_bytes(self) -> bytes:
        """Serialise deterministically."""
        names = sorted(self.payload)
        manifest = dict(self.manifest)
        manifest["payload"] = [{"name": n, "size": len(self.payload[n]),
                                "sha256": hashlib.sha256(self.payload[n]).hexdigest()} for n in names]
        mbytes = canonical_json(manifest)
        body = _HEAD.pack(MAGIC, FORMAT_VERSION, len(mbytes)) + mbytes + b"".join(self.payload[n] for n in names)
        return body + hashlib.sha256(body).digest()

    def save(self, path: str) -> str:
        """Write atomically to ``path``; return the path."""
        return write_bytes(path, self.to_bytes(), "artifact")

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "Artifact":
        """Parse and verify an artifact; raise :class:`ArtifactError` if corrupt or foreign."""
        if len(data) < _HEAD.size + 32 or data[:8] != MAGIC:
            raise ArtifactError("not an snnc artifact (bad magic or too short)", file=source,
                                hint="compile a model with snn-compile to make an artifact")
        body, digest = data[:-32], data[-32:]
        if hashlib.sha256(body).digest() != digest:
            raise ArtifactError("artifact is corrupt: checksum mismatch", file=source,
                                hint="the file was modified or truncated; recompile it")
        _, version, mlen = _HEAD.unpack_from(body)
        if version != FORMAT_VERSION:
            raise ArtifactError(f"artifact format version {version} is not supported (this snnc reads {FORMAT_VERSION})",
                                file=source, hint="recompile with this snnc version")
        try:
            manifest = json.loads(body[_HEAD.size:_HEAD.size + mlen])
        except ValueError as e:
            raise ArtifactError(f"artifact manifest is not valid JSON ({e})", file=source) from None
        if not isinstance(manifest, dict):
            raise ArtifactError("artifact manifest is not a JSON object", file=source)
        payload: Dict[str, bytes] = {}
        off = _HEAD.size + mlen
        entries = manifest.pop("payload", [])
        if not isinstance(entries, list):
            raise ArtifactError("artifact manifest's payload list is malformed", file=source)
        for entry in entries:
            if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and isinstance(entry.get("size"), int) and entry["size"] >= 0
                    and isinstance(entry.get("sha256"), str)):
                raise ArtifactError(f"artifact manifest has a malformed payload entry {entry!r:.80}", file=source)
            blob = body[off:off + entry["size"]]
            off += entry["size"]
            if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
                raise ArtifactError(f"payload '{entry['name']}' is corrupt", file=source)
            payload[entry["name"]] = blob
        if off != len(body):
            raise ArtifactError("artifact has trailing or missing payload bytes", file=source)
        check_manifest(manifest, source)
        return cls(manifest, payload)

    @classmethod
    def load(cls, path: str) -> "Artifact":
        """Read and verify an artifact file."""
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise InputError("artifact file not found", file=path) from None
        except OSError as e:
            raise InputError(f"cannot read artifact ({e.strerror})", file=path) from None
        return cls.from_bytes(data, source=path)


def _positive_ints(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)


def check_manifest(manifest: Mapping[str, Any], source: str = "<bytes>") -> None:
    """Raise :class:`ArtifactError` unless the manifest has the fields every runtime reads, well-typed."""
    problems = []
    if not isinstance(manifest.get("target"), str):
        problems.append("'target' is not a name")
    opts = manifest.get("options")
    if not isinstance(opts, dict):
        problems.append("'options' is missing")
    else:
        dt = opts.get("dt_s")
        if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and np.isfinite(dt) and dt > 0):
            problems.append(f"options.dt_s is {dt!r}, not a time step > 0")
        if not isinstance(opts.get("method"), str):
            problems.append("options.method is not a name")
    for key in ("input_shape", "output_shape"):
        if not _positive_ints(manifest.get(key)):
            problems.append(f"'{key}' is {manifest.get(key)!r:.40}, not a list of positive sizes")
    if problems:
        raise ArtifactError("artifact manifest is malformed: " + "; ".join(problems), file=source,
                            hint="recompile the model; the file was edited or written by something else")


def split_graph_payload(payload: Mapping[str, bytes]) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """Return the graph description and arrays stored by the cpu target (ArtifactError if malformed)."""
    if "graph.json" not in payload:
        raise ArtifactError("artifact payload has no graph.json")
    try:
        desc = json.loads(payload["graph.json"])
        arrays = unpack_arrays(payload)
    except (ValueError, OSError, EOFError) as e:  # JSON, UTF-8 and .npy format errors
        raise ArtifactError(f"artifact payload is malformed ({type(e).__name__}: {e})") from None
    if not isinstance(desc, dict):
        raise ArtifactError("artifact graph.json is not a JSON object")
    return desc, arrays
