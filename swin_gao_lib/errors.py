"""Exceptions that carry a message meant for the user.

Every error raised because of *input* (a params file, a data file, an output
folder) derives from :class:`InputError`: the CLI prints it as one line and
exits 2; anything else is a failed run (exit 1).
"""

from __future__ import annotations

import numbers
import reprlib
from typing import Any

#: The most characters of one value a message shows (a value may be a megabyte string).
SHOWN_CHARS = 48
#: The most characters of a path a message shows (whole for any typed path, so that
#: ``file:line:column`` stays whole); a longer one is cut in the middle.
SHOWN_PATH_CHARS = 160
#: The longest line an input error keeps (a backstop: values go through :func:`shown`).
MAX_LINE = 1000

_REPR = reprlib.Repr()  # works on a bounded part of the value, however large the value is
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 2, 6, 6, 4
_REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = _REPR.maxarray = 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_CHARS - 8


def shown(value: Any, quote: bool = True, limit: int = SHOWN_CHARS) -> str:
    """A value as every message shows it: at most about ``limit`` characters.

    ``repr(value)``, cut (with the value's length) when longer; with ``quote=False`` a
    printable string or a number is shown as ``str`` writes it, unquoted. A string
    holding a control character is always quoted, so a message stays one line.
    """
    try:
        if not quote and isinstance(value, (str, numbers.Number)) and not isinstance(value, bool):
            text = str(value)  # a path as it is; a number as people write it (not np.float32(1))
            if text.isprintable():
                if len(text) <= limit:
                    return text
                tail = min(limit // 3, 40)
                return f"{text[:limit - tail - 6]}...{text[-tail:]} ({len(text):,} characters)"
        text = _REPR.repr(value)
    except ValueError:  # an integer past Python's 4,300 digits for str(): its size alone
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    if isinstance(value, str) and len(value) > _REPR.maxstring:
        return f"{text} ({len(value):,} characters)"
    if len(text) > SHOWN_CHARS:
        text = text[:SHOWN_CHARS - 3] + "..."
    if isinstance(value, (list, tuple, dict)) and "..." in text:
        text += f" ({len(value):,} entries)"
    return text


def shown_path(path: Any) -> str:
    """A path as every message shows it: unquoted, whole up to :data:`SHOWN_PATH_CHARS`."""
    return shown(str(path), quote=False, limit=SHOWN_PATH_CHARS)


def _bounded(message: str) -> str:
    """``message`` with every line cut in the middle to :data:`MAX_LINE` characters."""
    lines = message.split("\n")
    for i, line in enumerate(lines):
        if len(line) > MAX_LINE:
            head, tail = line[:MAX_LINE - 200], line[-150:]
            lines[i] = f"{head} ...({len(line) - len(head) - len(tail):,} characters cut)... {tail}"
    return "\n".join(lines)


class InputError(ValueError):
    """Bad input found before (or instead of) training: fix the input.

    Its message is one line (or one per problem), each cut to :data:`MAX_LINE` characters.
    """

    def __init__(self, message: Any = "", *args: Any):
        super().__init__(_bounded(str(message)), *args)


class ConfigError(InputError):
    """A run configuration is invalid. The message names the field and a fix."""


class DataError(InputError):
    """A data set could not be loaded. The message names the file or source."""


class RunError(RuntimeError):
    """A run failed after it started; its partial records are kept in ``run_dir``."""

    def __init__(self, message: str, run_dir: str | None = None):
        super().__init__(message)
        self.run_dir = run_dir
