"""Errors a user can cause and fix.

Every exception raised for bad input derives from :class:`SeethroughError`.
The command line prints such an error as one line and exits with status 2;
anything else is a bug and keeps its traceback.
"""


class SeethroughError(ValueError):
    """Bad input: the message names the file or argument and what was expected."""


class DataError(SeethroughError):
    """A data set, folder or image could not be read as expected."""


class ChecksumError(DataError):
    """A downloaded or cached file does not match its published checksum."""


class ModelError(SeethroughError):
    """A model name, spec or layer that cannot be built for the given input."""


class RunError(SeethroughError):
    """A run folder that is missing, incomplete or from an incompatible version."""


class SkippedImageWarning(UserWarning):
    """An image in a data folder could not be read and was left out."""


class TrainingStopped(Exception):
    """A training was cancelled (its stop event was set); the last complete epoch is on disk."""
