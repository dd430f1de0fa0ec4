"""The errors every part of the package may raise to a user, in one module that everything imports downward
(``cli`` catches them; commands, pipelines and the conversion raise them).

- ``CommandError``: a user-facing error of a command: printed without a traceback, non-zero exit.
- ``StepError``: a step of a pipeline (demo, benchmark-accuracy) failed; the message names the command and its log.
- ``WorkdirError``: a pipeline's working folder cannot be used (not ours, made for other inputs, not writable).
"""


class CommandError(Exception):
    """A user-facing error: printed without a traceback, exit code 1 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class StepError(Exception):
    """A pipeline step failed; the message names the command and its log."""


class WorkdirError(Exception):
    """A pipeline's working folder cannot be used; the message names it and says what to do."""
