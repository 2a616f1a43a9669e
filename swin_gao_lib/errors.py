"""Exceptions that carry a message meant for the user.

Every error the kit raises because of *input* (a params file, a data file, an
output folder) derives from :class:`InputError`. The CLI turns those into one
clear line and exit status 2; anything else is a failed run (status 1).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input found before (or instead of) training: fix the input."""


class ConfigError(InputError):
    """A run configuration is invalid. The message names the field and a fix."""


class DataError(InputError):
    """A data set could not be loaded. The message names the file or source."""


class RunError(RuntimeError):
    """A run failed after it started; partial outputs were kept.

    Attributes:
        run_dir: the folder holding the partial records of the failed run.
    """

    def __init__(self, message: str, run_dir: str | None = None):
        super().__init__(message)
        self.run_dir = run_dir
