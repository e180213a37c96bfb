"""The error hierarchy and exit codes.

The library raises these; the CLI's single error boundary (`vscli.cli.app`) turns each into one
`Error: ...` line on stderr and the exit code it carries. Nothing else in the package exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, listed in the README."""

    OK = 0
    ERROR = 1  # unexpected failure (a bug, or an OS error we did not foresee)
    USAGE = 2  # invalid arguments, options or input values
    NOT_FOUND = 3  # unknown store or file, missing path
    FILES_FAILED = 4  # the command ran, but one or more files failed to process
    TIMEOUT = 5  # `status --wait` gave up before processing finished
    EXPIRED = 6  # the store has expired (its `expires_after` policy passed)
    CORRUPT = 7  # a manifest or index on disk cannot be read
    UNAVAILABLE = 8  # the embedding model cannot be loaded
    ENDPOINT = 9  # the chat endpoint failed: unreachable, bad key, unknown model, timeout, bad reply
    NO_CONTEXT = 10  # `ask` found no relevant passage, so nothing was sent to the model
    BACKEND = 11  # the Milvus server is unreachable, refused the token, or its collection does not fit
    INTERRUPTED = 130  # Ctrl-C


# What each code means to a user: the README's table and the man page's EXIT STATUS come from here.
EXIT_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "unexpected error (a bug, or an operating-system error such as an unreadable path or a "
    "full disk)",
    ExitCode.USAGE: "invalid arguments or input: bad option values, malformed `KEY=VALUE` or filter, "
    "unreadable/binary/empty file, ambiguous store name, no chat endpoint configured",
    ExitCode.NOT_FOUND: "not found: unknown store or file id or name, missing path",
    ExitCode.FILES_FAILED: "one or more files failed to process (see `vscli files STORE` for `last_error`)",
    ExitCode.TIMEOUT: "`status --wait` timed out",
    ExitCode.EXPIRED: "the store has expired",
    ExitCode.CORRUPT: "a manifest, index or archive on disk is corrupted (`vscli doctor` reports damage)",
    ExitCode.UNAVAILABLE: "the embedding model cannot be loaded",
    ExitCode.ENDPOINT: "the chat endpoint failed: unreachable, rejected key (401), unknown model (404), "
    "timeout, malformed reply",
    ExitCode.NO_CONTEXT: "`ask` found no relevant passage, so nothing was sent to the model",
    ExitCode.BACKEND: "the store's Milvus backend failed: server unreachable, token refused, Milvus Lite file "
    "in use by another process, or a collection that does not fit the store (other dimension, not empty)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


class VscliError(Exception):
    """Base class: a message fit for the user and the exit code to leave with. ``field``: the input the
    error is about, by its library name (OpenAI's where it has one: ``max_num_results``), which the
    message starts with; each front end names it as its users know it (`worded`)."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, exit_code: ExitCode | None = None, field: str | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        self.field = field

    @property
    def message(self) -> str:
        return str(self.args[0])

    def worded(self, names: dict[str, str]) -> str:
        """The message with its field named as a front end names it (``-k`` for the CLI)."""
        if self.field is not None and self.field in names and self.message.startswith(self.field):
            return names[self.field] + self.message[len(self.field):]
        return self.message


class InvalidInput(VscliError):
    exit_code = ExitCode.USAGE


class TooLarge(InvalidInput):
    """An upload over the size limit (HTTP: 413)."""


class NotFound(VscliError):
    exit_code = ExitCode.NOT_FOUND


class FilesFailed(VscliError):
    exit_code = ExitCode.FILES_FAILED


class WaitTimeout(VscliError):
    exit_code = ExitCode.TIMEOUT


class StoreExpired(VscliError):
    exit_code = ExitCode.EXPIRED


class CorruptData(VscliError):
    exit_code = ExitCode.CORRUPT


class Unavailable(VscliError):
    exit_code = ExitCode.UNAVAILABLE


class BackendError(VscliError):
    exit_code = ExitCode.BACKEND
