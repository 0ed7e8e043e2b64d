"""The one exception the command line treats as the user's mistake."""


class UsageError(Exception):
    """A bad argument or missing path: printed as one line, exit code 2 (no traceback unless --debug)."""
