"""Errors a user can cause and fix (bad files, bad options, foreign checkpoints).
The CLI prints them as one line and exits with code 2."""


class RnnlabError(ValueError):
    """Base class of rnnlab's user-facing errors."""


class DataError(RnnlabError):
    """Input text or series that cannot be used (empty, undecodable, too short...)."""


class CheckpointError(RnnlabError):
    """A checkpoint that is missing, damaged, foreign or of a newer format."""


class ConfigError(RnnlabError):
    """An argument or option outside what it accepts. Messages name the library's own
    parameter (``hidden_size``); the CLI shows its flag (``--hidden-size``) instead."""
