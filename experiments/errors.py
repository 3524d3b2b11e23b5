"""Errors a user can fix are one message, not a traceback (docs/reliability.md, "User errors").

``run_reporting_errors(fn)`` runs the command line. A *user error* — a wrong data root or layout,
a bad option or value, a missing or unsafe checkpoint, absent pretrained weights — prints
``affectlab: error: <message>`` on stderr and exits non-zero (2 for the command line itself, 1
otherwise). Anything else is a bug and keeps its traceback. ``AFFECTLAB_DEBUG=1`` shows the
traceback of user errors too.

What counts as a user error: a ``UserError`` (below; the checks of what a user passed —
``--data.image_size``, ``--model.backbone``, the data root, list files, checkpoints — raise one of
its subclasses) and the command-line parser's own errors. Nothing else: a ``ValueError`` or
``FileNotFoundError`` that is not a ``UserError`` is a bug, or a library's message not written for
a user, and keeps its traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any

DEBUG_ENV = "AFFECTLAB_DEBUG"
PREFIX = "affectlab: error: "  # what the affectlab command prints before a user error
#: Exit status of a command line the parser rejects (argparse's convention) and of other user errors.
USAGE_STATUS, ERROR_STATUS = 2, 1


class UserError(Exception):
    """A mistake the user can fix (an option, a path, a file's content): one message, no traceback.

    Subclasses keep the built-in type a caller may catch (``InvalidValue`` is a ``ValueError``,
    ``MissingPath`` a ``FileNotFoundError``); the project's own error classes (``LayoutError``,
    ``CheckpointError``, ...) derive from it too.
    """


class InvalidValue(UserError, ValueError):
    """A value the user gave (an option, a line of a list file) that no run can use."""


class MissingPath(UserError, FileNotFoundError):
    """A file or folder the user named that is not there (or not what it should be)."""


def debug() -> bool:
    """Whether ``AFFECTLAB_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def user_error(err: BaseException) -> BaseException | None:
    """The exception that carries the user's message, if ``err`` is (or wraps) a user error; else ``None``.

    jsonargparse reports a class that failed to build as its own error raised ``from`` the original
    one: the chain of causes is searched, innermost user error first. An exception that merely
    happened while another was handled (``__context__`` only) is not followed: a bug raised in an
    ``except`` block keeps its traceback even when the error it handled was the user's.
    """
    from jsonargparse import ArgumentError

    chain = []
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        err = err.__cause__
    for candidate in reversed(chain):
        if isinstance(candidate, (UserError, ArgumentError)):
            return candidate
    return None


def message(err: BaseException) -> str:
    """The user's message for ``err``: its own text, with the parser's noise removed."""
    from jsonargparse import ArgumentError

    text = str(err).strip() or type(err).__name__
    if isinstance(err, ArgumentError):
        text = _parser_message(text)
    return text


def _parser_message(text: str) -> str:
    """One line out of jsonargparse's nested report (which repeats the namespace it was given)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    keep = [line for line in lines if not line.startswith(("Given value", "- Expected a", "Subclass types expect",
                                                          "Does not validate against any of the types"))]
    unaccepted = [line for line in keep if re.search(r"No action for key|not accepted|Unrecognized arguments", line,
                                                     re.IGNORECASE)]
    chosen = unaccepted[-1] if unaccepted else (keep[0] if keep else text)
    chosen = re.sub(r"^- ", "", chosen)
    chosen = re.sub(r"^Problem with given class_path '[^']*':\s*", "", chosen)
    chosen = re.sub(r"^Configuration check failed ::\s*", "", chosen)
    return chosen + " (--help lists the options)" if unaccepted else chosen


def report(err: BaseException, stream: Any = None, prog: str = "affectlab") -> int:
    """Print ``err``'s one message (``<prog>: error: ...``); the exit status to use."""
    from jsonargparse import ArgumentError

    stream = stream or sys.stderr
    stream.write(f"{prog}: error: {message(err)}\n")
    stream.flush()
    return USAGE_STATUS if isinstance(err, ArgumentError) else ERROR_STATUS


def run_reporting_errors(fn: Callable[..., Any], *args: Any, prog: str = "affectlab", **kwargs: Any) -> int:
    """Call ``fn``; a user error is reported in one message and gives a non-zero status, anything else raises.

    Returns the exit status: ``fn``'s own when it returns an integer, 0 when it returns anything else.
    """
    try:
        result = fn(*args, **kwargs)
    except SystemExit as exit_:
        code = exit_.code
        if isinstance(code, str):
            sys.stderr.write(code + "\n")
        return code if isinstance(code, int) else (0 if code is None else ERROR_STATUS)
    except Exception as err:
        found = user_error(err)
        if found is None or debug():
            raise
        return report(found, prog=prog)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
