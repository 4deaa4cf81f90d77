"""Domain errors: raised anywhere, caught once at the CLI boundary (one red line, exit 1)."""


class LstmNlpError(Exception):
    """A user-facing error: the message alone must tell the user what to fix."""


class ConfigError(LstmNlpError):
    """A recipe or an override is wrong (unknown key, wrong type, bad value)."""


class DataError(LstmNlpError):
    """Input data is missing, empty, misaligned or not UTF-8."""


class CheckpointError(LstmNlpError):
    """A checkpoint or run folder is missing, corrupt or does not fit."""


class TrainingInterrupted(LstmNlpError):
    """Ctrl-C during training: a checkpoint was saved; the CLI exits 130."""


class FileSystemError(LstmNlpError):
    """The operating system refused to read or write a path (missing, a folder, read-only, no
    permission, disk full); the message names the path and the reason."""
