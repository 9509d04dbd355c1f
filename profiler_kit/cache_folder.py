"""Where profiler_kit keeps what it may reuse between runs, in the user's cache: measured roofs
(capture/roof_cache.py) and the report's compiled templates (report/). Shared by capture and
report; nothing kept there is needed for a result, only to get it sooner.

    $PROFILER_KIT_CACHE, else $XDG_CACHE_HOME/profiler_kit, else ~/.cache/profiler_kit
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "PROFILER_KIT_CACHE"


def cache_dir() -> Path:
    """$PROFILER_KIT_CACHE, else $XDG_CACHE_HOME/profiler_kit, else ~/.cache/profiler_kit."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "profiler_kit"
