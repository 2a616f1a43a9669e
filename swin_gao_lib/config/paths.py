"""What a path the kit is given may be (:func:`check_path`, from its text alone) and what
is at it (:func:`what_is`): checked before anything is written.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from swin_gao_lib.errors import ConfigError, shown, shown_path

#: The longest name of one file or folder, in bytes (Linux's and macOS's NAME_MAX).
NAME_MAX = 255
#: The longest path, in bytes, with its terminating NUL (Linux's PATH_MAX).
PATH_MAX = 4096


def refuse_control_characters(text: str, field: str, noun: str) -> str:
    """Refuse ``text`` holding a control character (a newline, a tab, NUL, DEL...): a
    folder no one can type, a line of output broken in two. Run names share the rule.

    Raises:
        ConfigError: ``<field>: '<text>' is not a valid <noun>: it holds a control character``.
    """
    bad = next((c for c in text if ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        raise ConfigError(f"{field}: {shown(text)} is not a valid {noun}: it holds a control "
                          f"character ({bad!r}); remove it")
    return text


def check_path(path: str, field: str, noun: str = "folder", room: int = 0,
               below: str = "") -> str:
    """Refuse a path no file system takes, from its text alone; return it.

    ``room``: bytes the kit appends below it (``below`` says what), which must fit
    within :data:`PATH_MAX` too.

    Raises:
        ConfigError: an empty value (an unset shell variable), a control character,
            a name over :data:`NAME_MAX` bytes, a path over ``PATH_MAX - 1 - room``.
    """
    if not path.strip():
        raise ConfigError(f"{field}: an empty value names no {noun} (an unset shell variable?); "
                          f"give a path")
    refuse_control_characters(path, field, f"{noun} path")
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in YAML): no file name holds it
        raise ConfigError(f"{field}: {shown(path)} is not a valid {noun} path: it cannot be "
                          "encoded as a file name") from None
    longest = max(encoded.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        name = os.fsdecode(longest)
        within = "" if name == path else f", {shown(name, quote=False)},"
        raise ConfigError(f"{field}: {shown(path, quote=False)} holds a name{within} of "
                          f"{len(longest):,} bytes; a file or folder name holds at most "
                          f"{NAME_MAX} bytes: shorten it")
    limit = PATH_MAX - 1 - room
    if len(encoded) > limit:
        why = f" (leaving {room} for {below} below it)" if room else ""
        raise ConfigError(f"{field}: {shown(path, quote=False)} is {len(encoded):,} bytes long; "
                          f"a path may be at most {limit:,}{why}: use a shorter one")
    return path


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def what_is(path: str | os.PathLike) -> str:
    """``"file"``, ``"folder"``, or what makes ``path`` neither, to follow it in a message
    (``does not exist``, ``is a symbolic link loop``, ``is not a regular file (a FIFO)``...).

    Never opens the path, so a FIFO cannot make it wait.
    """
    path = Path(path)
    try:
        st = path.stat()  # follows symbolic links
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop (it resolves to itself); point it at a real path"
        if exc.errno == errno.ENAMETOOLONG:
            return "is a path too long for the file system; use a shorter one"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "cannot be reached (permission denied)"
        if exc.errno == errno.ENOTDIR:
            return "is below a file, not a folder"
        if path.is_symlink():
            return (f"is a symbolic link to {shown_path(os.readlink(path))}, which "
                    "does not exist")
        return "does not exist"
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    if stat.S_ISREG(st.st_mode):
        return "file"
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
    return f"is not a regular file ({kind})"
