"""The run's metrics.jsonl, in the format of the reward job's metrics file, one JSON object per line, rank 0 only::

    {"step": 3, "progress": 0.15, "metrics": {"ppo/reward": 0.41, "ppo/kl": 0.8}}
    {"event": "done", "step": 20, "progress": 1.0, "output": "/path/to/policy"}

Kept beside the trainer until the shared alignment.metrics_log (the reward helper's) is on main.
"""

import json
import math
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends lines to ``<directory>/metrics.jsonl``, flushed at once so a tail sees them."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **line) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")

    def metrics(self, step: int, progress: float, metrics: dict[str, float]) -> None:
        finite = {k: float(v) for k, v in metrics.items() if math.isfinite(v)}
        self.write(step=step, progress=round(min(max(progress, 0.0), 1.0), 6), metrics=finite)


def read_metrics(directory: str | Path) -> list[dict]:
    """The complete lines of a run's metrics file (a line still being written is left out)."""
    path = Path(directory) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(raw) for raw in path.read_text().split("\n")[:-1] if raw.strip()]
