"""Where the libraries' stdlib `logging` goes (floor 1): into twisted.logger, one event per record.

The daemon logs with twisted.logger (NDJSON on stderr when not on a terminal). Libraries log with
the stdlib; unhandled, Python's last-resort handler would print their warnings as bare text
between the JSON lines. `bridge_stdlib()` sends WARNING and above to twisted.logger with the
logger name as namespace, and never a traceback: a library's stack is not an operator's message.

pyHanko warns, with tracebacks, about every untrusted, expired or modified PDF signature; each of
those is already a finding of the verdict (edxml.pdfsig), so its loggers are kept at ERROR.
"""

from __future__ import annotations

import logging
from typing import Final

from twisted.logger import Logger, LogLevel

_QUIET: Final = ("pyhanko", "pyhanko_certvalidator")
_LEVELS: Final = {
    logging.CRITICAL: LogLevel.critical,
    logging.ERROR: LogLevel.error,
    logging.WARNING: LogLevel.warn,
    logging.INFO: LogLevel.info,
    logging.DEBUG: LogLevel.debug,
}


class _ToTwisted(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = _LEVELS.get(record.levelno, LogLevel.warn)
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        Logger(namespace=record.name).emit(
            level, "{library_message}", library_message=text, library_error=error
        )


def quiet_libraries() -> None:
    """Keep the libraries whose warnings our verdicts already report at ERROR."""
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)


def bridge_stdlib(level: int = logging.WARNING) -> None:
    """Route stdlib logging at `level` and above into twisted.logger (idempotent)."""
    quiet_libraries()
    root = logging.getLogger()
    if not any(isinstance(h, _ToTwisted) for h in root.handlers):
        root.addHandler(_ToTwisted())
    root.setLevel(level)
