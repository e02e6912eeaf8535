"""Where the daemon's events are written, and where the libraries' stdlib `logging` goes.

`stderr_observer()`: text on a terminal, one JSON object per line otherwise, each event's time
also as ISO 8601 in Vietnam time (`time`, beside twisted's epoch `log_time`): what agency IT
reads and what a log shipper indexes carry the same clock as every other edge of the node.

The daemon logs with twisted.logger (NDJSON on stderr when not on a terminal). Libraries log with
the stdlib; unhandled, Python's last-resort handler would print their warnings as bare text
between the JSON lines. `bridge_stdlib()` sends WARNING and above to twisted.logger with the
logger name as namespace, and never a traceback: a library's stack is not an operator's message.

pyHanko warns, with tracebacks, about every untrusted, expired or modified PDF signature; each of
those is already a finding of the verdict (edxml.pdfsig), so its loggers are kept at ERROR.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import IO, Any, Final, cast

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    Logger,
    LogLevel,
    formatEventAsClassicLogText,
    jsonFileLogObserver,
)

from edxml.model import VN_TZ

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


def local_time(when: float | None) -> str:
    """An event's `log_time` as ISO 8601 with +07:00, to the millisecond."""
    if when is None:
        return "-"
    return dt.datetime.fromtimestamp(when, VN_TZ).isoformat(timespec="milliseconds")


def stderr_observer(out: IO[str]) -> ILogObserver:
    """The daemon's and the simulators' log: text on a terminal, else NDJSON with `time`."""
    if out.isatty():
        return FileLogObserver(
            out, lambda event: formatEventAsClassicLogText(event, formatTime=local_time)
        )
    json_lines = jsonFileLogObserver(out, recordSeparator="")

    def observe(event: dict[str, Any]) -> None:
        json_lines({**event, "time": local_time(event.get("log_time"))})

    return cast(ILogObserver, observe)
