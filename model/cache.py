"""Where the model package keeps what it derives once and reuses: $HER_CACHE_DIR, else ~/.cache/her.

Why one place: the in-domain language model (model.metrics.intelligibility) and the generated
dialogue corpus (model.data.store.cached_clips) are rebuilt bit-identically from the code, so they
live outside the repository under one root that a machine (or a test) can move with one variable.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$HER_CACHE_DIR, else ~/.cache/her."""
    return Path(os.environ.get("HER_CACHE_DIR") or Path.home() / ".cache" / "her")
