"""One error family for everything a user can get wrong.

The CLI and the app catch ``EngineError`` and show its message; anything else
is a bug and keeps its traceback.
"""


class EngineError(Exception):
    """A problem the user can fix; the message says what and how."""


class DatasetError(EngineError):
    """A dataset file is malformed. Message names file, line and problem."""

    def __init__(self, path, problem, line=None):
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


class ModelError(EngineError):
    """A model cannot be loaded or run."""


class ConfigError(EngineError):
    """A configuration value is out of range or inconsistent."""


class CacheBusyError(EngineError):
    """The cache file stayed locked by another process."""
