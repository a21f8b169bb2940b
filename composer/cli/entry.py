"""The ``tisbench`` console script: SIGINT and SIGTERM become exceptions before anything heavy is
imported, so an interrupt that lands while the CLI itself is loading also ends as exit 130."""

from __future__ import annotations

import os
import sys

from composer.core import interrupts
from composer.core.errors import ExitStatus, interruption_message


def run() -> None:
    interrupts.install()
    try:
        from composer.cli.app import run as run_cli
    except KeyboardInterrupt as interruption:
        sys.stderr.write(f"tisbench: error: {interruption_message(interruption)} — nothing was started\n")
        sys.stderr.flush()
        os._exit(ExitStatus.INTERRUPTED)
    run_cli()
