"""Files written atomically (temporary file, fsync, ``os.replace``), as strict JSON or CSV.

A crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically; return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    Raises:
        OSError: the write failed; its ``filename`` is ``path`` (not the temporary
            name), and the temporary file is gone.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        # mkstemp creates the file 0600; give it the mode any new file gets (0666 & ~umask).
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                Path(tmp).unlink(missing_ok=True)
            except OSError:  # a folder turned read-only: nothing more can be done
                pass
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def strict(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Write strict JSON atomically: non-finite numbers become ``null``."""
    return atomic_write_text(path, json.dumps(strict(data), indent=2, sort_keys=False,
                                              default=str, allow_nan=False) + "\n")


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``rows`` as CSV atomically; the columns are every row's keys, first seen first."""
    rows = list(rows)
    buf = io.StringIO()
    if rows:
        fields = list(rows[0])
        for r in rows[1:]:
            fields += [k for k in r if k not in fields]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())
