"""Errors raised by corpus preparation; each message names what to fix (a package, a file)."""

from __future__ import annotations

__all__ = ["DataError", "MissingPackageError", "CorpusFileError", "SynthesisError"]


class DataError(RuntimeError):
    """Base class of data preparation errors."""


class MissingPackageError(DataError):
    """A system package (TTS engine, text source) is not installed.

    The message names the Debian package and the command that installs it.
    """

    def __init__(self, what: str, package: str) -> None:
        self.package = package
        super().__init__(
            f"{what} is missing: install the Debian package '{package}' "
            f"(apt-get install -y --no-install-recommends {package})"
        )


class CorpusFileError(DataError):
    """A corpus file is missing, unreadable or malformed; ``path`` is the file at fault."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}")


class SynthesisError(DataError):
    """A TTS engine failed on an utterance (the message carries the command and its stderr)."""
