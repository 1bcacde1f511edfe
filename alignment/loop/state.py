"""The run's state file: what a killed run continues from.

One JSON document (``<out>/state.json``), rewritten atomically (a temporary file, fsync, rename)
after every step that must survive a kill: a stage done, a job launched, a vote about to be sent
and its answer. A stage is done once its record has ``seconds``; a restarted run skips it and
redoes only the unfinished one, whose steps are safe to repeat (campaigns are found by slug, an
annotator gets their held item back, a vote is sent again with the same ``submission_token``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path


class State:
    def __init__(self, path: Path, data: dict):
        self.path, self.data = path, data
        self.lock = threading.RLock()

    @classmethod
    def open(cls, path: Path, config: dict) -> State:
        """The state of the run in ``path``'s directory, or a new one; a run's sizes cannot change mid-way."""
        if path.is_file():
            data = json.loads(path.read_text())
            if data["config"] != config:
                changed = sorted(k for k in config if data["config"].get(k) != config[k])
                raise ValueError(f"{path} belongs to a run with other settings ({', '.join(changed)}); "
                                 "use another --out or the same flags")
            data["restarts"] = data.get("restarts", 0) + 1
        else:
            data = {"config": config, "stages": {}, "restarts": 0, "created": time.time()}
        state = cls(path, data)
        state.save()
        return state

    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                json.dump(self.data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    @contextmanager
    def update(self):
        """``with state.update() as data: data[...] = ...``: changed and saved under the lock."""
        with self.lock:
            yield self.data
            self.save()

    def done(self, stage: str) -> bool:
        return "seconds" in self.data["stages"].get(stage, {})

    def stage(self, stage: str) -> dict:
        """The stage's record (created on first use); its outputs live here."""
        with self.lock:
            return self.data["stages"].setdefault(stage, {})
