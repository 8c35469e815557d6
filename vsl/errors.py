"""Errors the package raises for problems in its inputs."""

from __future__ import annotations

from pathlib import Path


class VslError(Exception):
    """Base class of every error the package raises on purpose."""


class DataFormatError(VslError, ValueError):
    """A data file that cannot be read as the format it claims to be.

    The message always names the file and, where one is to blame, the 1-based line.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class SettingError(VslError, ValueError):
    """A setting, from a config file or the command line, that no run can use; the message
    names the setting."""


class DatasetNotFoundError(VslError, FileNotFoundError):
    """A dataset name or folder that does not resolve to the files it needs."""
