"""Reason codes and the one exception type the worker raises for anything a user can cause.

Every failure ends as exactly one JSON document ``{"v": 1, "ok": false, "reason", "message"}``
in the termination log, and a non-zero exit code (one per reason, so a shell can tell them apart;
the operator reads the reason from the JSON, not the exit code).
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    MODEL_NOT_FOUND = "ModelNotFound"  # missing, unreachable or unloadable model
    DIGEST_MISMATCH = "DigestMismatch"  # bytes (or builtin version) differ from --digest
    INPUT_MISMATCH = "InputMismatch"  # input spec does not fit the model
    OUT_OF_MEMORY = "OutOfMemory"  # a batch size ran out of host or device memory
    NO_DEVICE = "NoDevice"  # --device cuda / --instance-kind gpu without a CUDA device
    SERVER_START_FAILED = "ServerStartFailed"  # tritonserver did not become ready
    TIMEOUT = "Timeout"  # --deadline-seconds passed, or the worker was terminated
    INVALID_ARGUMENT = "InvalidArgument"  # bad command line or environment variable
    INTERNAL = "Internal"  # a bug in the worker; the message carries the exception


EXIT_CODES: dict[Reason, int] = {
    Reason.INVALID_ARGUMENT: 2,
    Reason.MODEL_NOT_FOUND: 10,
    Reason.DIGEST_MISMATCH: 11,
    Reason.INPUT_MISMATCH: 12,
    Reason.OUT_OF_MEMORY: 13,
    Reason.NO_DEVICE: 14,
    Reason.SERVER_START_FAILED: 15,
    Reason.TIMEOUT: 124,  # the exit code timeout(1) uses
    Reason.INTERNAL: 70,  # EX_SOFTWARE
}


class WorkerError(Exception):
    """A failure with a reason code and a message that tells the user what to change."""

    def __init__(self, reason: Reason, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = Reason(reason)
        self.message = message

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.reason]
