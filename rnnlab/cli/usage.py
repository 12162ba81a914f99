"""``UsageError``: a mistake in the command line itself (the library's own
``RnnlabError``s are the other kind of user error); both print one line and exit with
code 2 (``rnnlab.cli.main``)."""


class UsageError(Exception):
    """A user-facing error: printed as one line, exit code 2."""
