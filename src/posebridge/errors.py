"""The one exception type users see: a clear, one-line message naming the file and the problem."""


class PoseBridgeError(Exception):
    """A user-facing error. The command line prints ``str(err)`` on one line and exits 1."""


class DataError(PoseBridgeError):
    """An input file is missing, corrupt, truncated, of the wrong shape or holds invalid values."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(PoseBridgeError):
    """A configuration value is unknown or invalid."""


class TrainingError(PoseBridgeError):
    """Training cannot go on: a loss or validation error became NaN or inf."""
