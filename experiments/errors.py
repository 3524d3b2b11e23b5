"""Errors a user can fix are one message, not a traceback (docs/reliability.md, "User errors").

``run_reporting_errors(fn)`` runs the command line. A *user error* — a wrong data root or layout,
a bad option or value, a missing or unsafe checkpoint, absent pretrained weights — prints
``affectlab: error: <message>`` on stderr and exits non-zero (2 for the command line itself, 1
otherwise). Anything else is a bug and keeps its traceback. ``AFFECTLAB_DEBUG=1`` shows the
traceback of user errors too.

What counts as a user error: the project's own error classes (below), the command-line parser's
errors, and a ``ValueError``/``FileNotFoundError`` raised by affectlab's own code — the checks
that validate what a user passed (``--data.image_size``, ``--model.backbone``, list files, ...).
The same exceptions raised deep inside a library stay tracebacks: they are not messages written
for a user.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEBUG_ENV = "AFFECTLAB_DEBUG"
PREFIX = "affectlab: error: "
#: Exit status of a command line the parser rejects (argparse's convention) and of other user errors.
USAGE_STATUS, ERROR_STATUS = 2, 1

_PACKAGE_DIRS: tuple[str, ...] | None = None


def debug() -> bool:
    """Whether ``AFFECTLAB_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _package_dirs() -> tuple[str, ...]:
    global _PACKAGE_DIRS
    if _PACKAGE_DIRS is None:
        import affectlab
        import affectlab.callbacks
        import affectlab.datamodules
        import affectlab.experiments
        import affectlab.modules

        _PACKAGE_DIRS = tuple(str(Path(m.__file__).resolve().parent) + os.sep for m in (
            affectlab, affectlab.callbacks, affectlab.datamodules, affectlab.experiments, affectlab.modules))
    return _PACKAGE_DIRS


def _user_error_types() -> tuple[type[BaseException], ...]:
    from jsonargparse import ArgumentError

    from affectlab.datamodules.celeba import CelebAFormatError
    from affectlab.datamodules.fashion_mnist import FashionMNISTError
    from affectlab.datamodules.vea.layouts import LayoutError
    from affectlab.experiments.checkpoints import CheckpointError
    from affectlab.experiments.sweep import SweepError
    from affectlab.modules.backbones import WeightsUnavailableError

    return (ArgumentError, CheckpointError, LayoutError, FashionMNISTError, CelebAFormatError,
            WeightsUnavailableError, SweepError)


def _raised_by_affectlab(err: BaseException) -> bool:
    """Whether the innermost frame of ``err``'s traceback is affectlab's own code."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(_package_dirs())


def user_error(err: BaseException) -> BaseException | None:
    """The exception that carries the user's message, if ``err`` is (or wraps) a user error; else ``None``.

    jsonargparse reports a class that failed to build as its own error with the original one as
    ``__cause__``/``__context__``: the chain is searched, innermost user error first.
    """
    chain = []
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        chain.append(err)
        err = err.__cause__ or err.__context__
    types = _user_error_types()
    for candidate in reversed(chain):
        if isinstance(candidate, types):
            return candidate
        if isinstance(candidate, (ValueError, FileNotFoundError, NotADirectoryError)) and _raised_by_affectlab(candidate):
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


def report(err: BaseException, stream: Any = None) -> int:
    """Print ``err``'s one message; the exit status to use."""
    from jsonargparse import ArgumentError

    stream = stream or sys.stderr
    stream.write(PREFIX + message(err) + "\n")
    stream.flush()
    return USAGE_STATUS if isinstance(err, ArgumentError) else ERROR_STATUS


def run_reporting_errors(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Call ``fn``; a user error is reported in one message and gives a non-zero status, anything else raises."""
    try:
        fn(*args, **kwargs)
    except SystemExit as exit_:
        code = exit_.code
        if isinstance(code, str):
            sys.stderr.write(code + "\n")
        return code if isinstance(code, int) else (0 if code is None else ERROR_STATUS)
    except Exception as err:
        found = user_error(err)
        if found is None or debug():
            raise
        return report(found)
    return 0
