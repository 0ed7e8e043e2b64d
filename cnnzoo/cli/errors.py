"""Which exceptions the command line treats as the user's mistake: printed as one line, exit code 2.

Everything else is a bug and keeps its traceback (exit 1); `--debug` shows the traceback of either.
"""
from __future__ import annotations

import sys


class UsageError(Exception):
    """A bad argument or missing path: printed as one line, exit code 2 (no traceback unless --debug)."""


#: Raised by cnnzoo's argument checks (ValueError, TypeError and their subclasses: unreadable model files,
#: checkpoints of another run, ...) or by the OS for a path the user gave, or when a download cannot connect.
USER_ERRORS = (UsageError, ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError, ConnectionError)


def is_user_error(error: BaseException) -> bool:
    """True for the errors a user fixes (USER_ERRORS, an export's ParityError); False for bugs."""
    if isinstance(error, USER_ERRORS):
        return True
    parity = sys.modules.get("cnnzoo.export.parity")   # loaded whenever an export could have raised it
    return parity is not None and isinstance(error, parity.ParityError)


def one_line(error: BaseException) -> str:
    """The error's message on one line (library messages may span several)."""
    return " ".join(str(error).split()) or type(error).__name__
