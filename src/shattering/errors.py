"""Errors a user can fix.

Every exception here carries one sentence that names the problem and the fix. The command line prints
that sentence alone and exits with status 2; a traceback means a bug in shattering, not in the input.
"""

from __future__ import annotations


class ShatteringError(Exception):
    """Base class for problems with the user's input, files or environment (exit status 2)."""


class ConfigError(ShatteringError, ValueError):
    """A configuration value is unknown, out of range or of the wrong type."""


class DataNotFoundError(ShatteringError, FileNotFoundError):
    """A data set's files are neither on disk nor downloadable."""


class DataFormatError(ShatteringError, ValueError):
    """A data file exists but is not in the format its name promises (truncated, wrong magic, ...)."""


class ChecksumError(ShatteringError, ValueError):
    """A downloaded file does not match its published checksum."""


class DownloadError(ShatteringError, OSError):
    """A download failed (network error, cut connection)."""


class RecordError(ShatteringError, OSError):
    """A run record could not be written or read back (disk full, corrupted file, ...)."""


class RunLockedError(ShatteringError, RuntimeError):
    """Another process is training the same run right now."""
