"""The metrics file every training job writes, and the callback that writes it from a Trainer.

``metrics.jsonl`` in the run's output directory, one JSON object per line, appended by rank 0 only::

    {"step": 12, "progress": 0.4, "metrics": {"train/loss": 0.61, "train/reward/accuracy": 0.7}}
    {"event": "done", "step": 30, "progress": 1.0, "output": "/path/to/model"}

Whoever watches a run (the site's job runner, a person with ``tail -f``) reads these lines; the
run never needs to know who is watching. The PPO trainer writes the same format.
"""

import json
import math
from pathlib import Path

from transformers import TrainerCallback

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
        finite = {k: float(v) for k, v in metrics.items()
                  if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
        self.write(step=step, progress=round(min(max(progress, 0.0), 1.0), 6), metrics=finite)


def read_metrics(path: str | Path) -> list[dict]:
    """The complete lines of a metrics file (a line still being written is left for the next read)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        return []
    lines = []
    for raw in path.read_text().split("\n")[:-1]:
        if raw.strip():
            lines.append(json.loads(raw))
    return lines


class MetricsLogCallback(TrainerCallback):
    """Writes every Trainer log (and the step's progress) to the metrics file, on rank 0."""

    def __init__(self, directory: str | Path) -> None:
        self.log = MetricsLog(directory)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.log.metrics(state.global_step, state.global_step / max(state.max_steps, 1), logs)
