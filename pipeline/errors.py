"""Exceptions the command line turns into one clear message and a non-zero exit."""


class PipelineError(Exception):
    """A user-facing error: bad input, bad config, unreachable server. Printed without a traceback."""


class DataError(PipelineError):
    """Malformed or inconsistent input data; the message names the file and, where known, the video."""


class ConfigError(PipelineError):
    """An invalid configuration; the message names the offending key."""
