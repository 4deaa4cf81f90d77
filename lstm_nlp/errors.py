"""Domain errors: raised anywhere, caught once at the CLI boundary (one red line, exit 1)."""


class LstmNlpError(Exception):
    """A user-facing error: the message alone must tell the user what to fix."""


class ConfigError(LstmNlpError):
    """A recipe or an override is wrong (unknown key, wrong type, bad value)."""


class DataError(LstmNlpError):
    """Input data is missing, empty, misaligned or not UTF-8."""


class CheckpointError(LstmNlpError):
    """A checkpoint or run folder is missing, corrupt or does not fit."""


class DivergenceError(LstmNlpError):
    """Training blew up (a loss not finite, or far above its recent level): stopped before the
    diverged weights could replace a checkpoint."""


class TrainingInterrupted(LstmNlpError):
    """Ctrl-C, SIGTERM or SIGHUP during training: a checkpoint was saved; the CLI exits with
    128 + the signal's number (130, 143, 129), the shell's code for a process that signal ended."""

    def __init__(self, message: str, signum: int = 2):
        super().__init__(message)
        self.signum = signum


class Aborted(KeyboardInterrupt):
    """A second stop signal during training: stop at once, without saving. A KeyboardInterrupt,
    as a second Ctrl-C always was, so that nothing that catches exceptions swallows it; it
    carries the signal for the exit code."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class FileSystemError(LstmNlpError):
    """The operating system refused to read or write a path (missing, a folder, read-only, no
    permission, disk full); the message names the path and the reason."""


def check_format(obj: object, path: object, fmt: str, version: int, what: str, label: str
                 ) -> None:
    """A file lstm-nlp wrote (a checkpoint, an export manifest) read back as `obj`: a dict with
    this `format` and `version`, else the one line that says which it is not."""
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise CheckpointError(f"{path}: not an lstm-nlp {what}")
    if obj.get("version") != version:
        raise CheckpointError(f"{path}: {label} version {obj.get('version')} is not "
                              f"supported (this lstm-nlp reads version {version})")
