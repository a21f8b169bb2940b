"""An unexpected exception's traceback goes into a file that one line on stderr names (exit 70).

The file lives under ``$XDG_STATE_HOME/tisbench/`` (default ``~/.local/state/tisbench/``), or the
temporary directory when that cannot be written.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from composer import __version__


def crash_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tisbench"


def save_traceback(error: BaseException) -> Path | None:
    """Write the traceback with what a bug report needs; the file's path, or None if none could be written."""
    text = (
        f"tisbench {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
        f"argv: {sys.argv}\n\n" + "".join(traceback.format_exception(error))
    )
    name = f"crash-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.txt"
    for directory in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text, encoding="utf-8")
            return directory / name
        except OSError:
            continue
    return None
