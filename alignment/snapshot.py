"""Preference snapshots read without Django: the manifest, its hash check, pairs, the split, `datasets`.

The site writes a snapshot (labeling_app/actions/snapshots.py documents the layout and the manifest
line); this module reads one. `Snapshot.load` refuses a directory whose manifest does not hash to
its name and recorded hash, or whose files do not match their recorded SHA-256, so a model card's
snapshot hash always names exactly the data the model saw.

Pairs are oriented by the overall verdict: ``chosen`` is the side the annotator preferred overall
(on an overall tie, the left clip) and every label is rewritten relative to it: "chosen",
"rejected", "tie", "both_bad" or "na" (alignment.reward.loss says what each does in training).
"""

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SNAPSHOT_FORMAT = "her-snapshot-v1"
MANIFEST_FILE = "manifest.jsonl"
INFO_FILE = "snapshot.json"
LABELS = ("chosen", "rejected", "tie", "both_bad", "na")


class SnapshotInvalid(ValueError):
    """A snapshot directory that is not what its manifest and hash say it is."""


@dataclass(frozen=True)
class PreferencePair:
    """One comparison, oriented chosen / rejected, with file paths resolved inside the snapshot."""

    comparison: str
    round: str
    annotator: int
    chosen: Path
    rejected: Path
    chosen_variant: int
    rejected_variant: int
    chosen_checkpoint: str
    rejected_checkpoint: str
    overall: str  # "chosen" or "tie"
    labels: dict[str, str]  # dimension -> one of LABELS, relative to chosen
    strength: int
    confidence: int
    chosen_was_left: bool


class Snapshot:
    """A loaded snapshot: its hash, dimensions, and pairs (`pairs`, `split`, `to_dataset`)."""

    def __init__(self, path: Path, info: dict, records: list[dict]) -> None:
        self.path, self.info, self.records = path, info, records

    @property
    def sha256(self) -> str:
        return self.info["sha256"]

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(self.info["dimensions"])

    @classmethod
    def load(cls, path: str | Path, verify_files: bool = True) -> "Snapshot":
        path = Path(path)
        info_file, manifest_file = path / INFO_FILE, path / MANIFEST_FILE
        if not info_file.is_file() or not manifest_file.is_file():
            raise SnapshotInvalid(f"{path} is not a snapshot: {INFO_FILE} and {MANIFEST_FILE} are required")
        info = json.loads(info_file.read_text())
        if info.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotInvalid(f"{path}: format {info.get('format')!r}, expected {SNAPSHOT_FORMAT!r}")
        manifest = manifest_file.read_bytes()
        sha256 = hashlib.sha256(manifest).hexdigest()
        if sha256 != info.get("sha256"):
            raise SnapshotInvalid(f"{path}: the manifest hashes to {sha256}, not the recorded {info.get('sha256')}"
                                  " (the snapshot was modified)")
        records = [json.loads(line) for line in manifest.decode().splitlines() if line.strip()]
        snapshot = cls(path, info, records)
        if verify_files:
            snapshot.verify_files()
        return snapshot

    def verify_files(self) -> None:
        """Check every referenced rollout exists inside the snapshot and has its recorded SHA-256."""
        root = self.path.resolve()
        for record in self.records:
            for side in ("a", "b"):
                entry = record[side]
                file = (self.path / entry["rollout"]).resolve()
                if not file.is_relative_to(root):
                    raise SnapshotInvalid(f"comparison {record['comparison']}: {entry['rollout']} leaves the snapshot")
                if not file.is_file():
                    raise SnapshotInvalid(f"comparison {record['comparison']}: {entry['rollout']} is missing")
                if _file_sha256(file) != entry["rollout_sha256"]:
                    raise SnapshotInvalid(f"comparison {record['comparison']}: {entry['rollout']} was modified")

    def pairs(self) -> list[PreferencePair]:
        return [_orient(record, self.path) for record in self.records]

    def split(self, validation_fraction: float = 0.2, seed: int = 0
              ) -> tuple[list[PreferencePair], list[PreferencePair]]:
        """(train, validation) pairs, split by human turn: every pair of one round falls on one side."""
        return split_by_round(self.pairs(), validation_fraction, seed)

    def to_dataset(self, validation_fraction: float = 0.2, seed: int = 0):
        """A `datasets.DatasetDict` with "train" and "validation" (see `pairs_to_dataset` for the columns)."""
        import datasets

        train, validation = self.split(validation_fraction, seed)
        return datasets.DatasetDict({"train": pairs_to_dataset(train, self.dimensions),
                                     "validation": pairs_to_dataset(validation, self.dimensions)})


def write_snapshot(root: str | Path, comparisons: Sequence[dict], rollouts: dict[str, bytes],
                   dimensions: Sequence[str], filters: dict | None = None) -> Snapshot:
    """Write a snapshot outside the site (simulated experiments, tests) in the site's exact format.

    `comparisons` are manifest lines whose sides name their "candidate" (plus "variant",
    "variant_name", "checkpoint"); the rollout paths and hashes are filled in from `rollouts`
    (candidate -> safetensors bytes). The directory is ``root/<sha256>``.
    """
    root = Path(root)
    staging = root / ".staging"
    (staging / "rollouts").mkdir(parents=True, exist_ok=True)
    lines = []
    for record in sorted(comparisons, key=lambda r: r["comparison"]):
        record = json.loads(json.dumps(record))
        for side in ("a", "b"):
            data = rollouts[record[side]["candidate"]]
            relative = f"rollouts/{record[side]['candidate']}.safetensors"
            (staging / relative).write_bytes(data)
            record[side].update(rollout=relative, rollout_sha256=hashlib.sha256(data).hexdigest())
        lines.append(record)
    manifest = "".join(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n" for line in lines).encode()
    sha256 = hashlib.sha256(manifest).hexdigest()
    (staging / MANIFEST_FILE).write_bytes(manifest)
    info = {"format": SNAPSHOT_FORMAT, "sha256": sha256, "comparisons": len(lines), "dimensions": list(dimensions),
            "filters": filters or {}}
    (staging / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    final = root / sha256
    if final.exists():
        shutil.rmtree(staging)
    else:
        staging.rename(final)
    return Snapshot.load(final)


def split_by_round(pairs: Sequence[PreferencePair], validation_fraction: float, seed: int
                   ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Assign each round to validation when a hash of (seed, round) falls below the fraction.

    Hashing the round id (not shuffling) keeps a round's side fixed as a snapshot's rounds change,
    and puts all comparisons of a round on the same side. A small snapshot whose hashes all fall on
    one side (8 rounds at 0.2 leave validation empty one time in six) still gets a round on each
    side whenever it has two rounds and the fraction is above 0: the round whose hash lies nearest
    the threshold changes side.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must lie in [0, 1), got {validation_fraction}")
    position = {}
    for pair in pairs:
        if pair.round not in position:
            digest = hashlib.sha256(f"{seed}:{pair.round}".encode()).digest()
            position[pair.round] = int.from_bytes(digest[:8], "big") / 2**64
    validation_rounds = {r for r, x in position.items() if x < validation_fraction}
    if len(position) >= 2 and validation_fraction > 0:
        if not validation_rounds:
            validation_rounds = {min(position, key=position.get)}
        elif len(validation_rounds) == len(position):
            validation_rounds -= {max(position, key=position.get)}
    train, validation = [], []
    for pair in pairs:
        (validation if pair.round in validation_rounds else train).append(pair)
    return train, validation


def pairs_to_dataset(pairs: Sequence[PreferencePair], dimensions: Sequence[str]):
    """A `datasets.Dataset` of pairs: chosen / rejected (rollout paths), overall, one column per dimension, ..."""
    import datasets

    columns = {
        "comparison": [p.comparison for p in pairs], "round": [p.round for p in pairs],
        "chosen": [str(p.chosen) for p in pairs], "rejected": [str(p.rejected) for p in pairs],
        "overall": [p.overall for p in pairs],
        **{dimension: [p.labels.get(dimension, "na") for p in pairs] for dimension in dimensions},
        "strength": [p.strength for p in pairs], "confidence": [p.confidence for p in pairs],
        "annotator": [p.annotator for p in pairs],
        "chosen_variant": [p.chosen_variant for p in pairs], "rejected_variant": [p.rejected_variant for p in pairs],
        "chosen_was_left": [p.chosen_was_left for p in pairs],
    }
    features = datasets.Features({
        "comparison": datasets.Value("string"), "round": datasets.Value("string"),
        "chosen": datasets.Value("string"), "rejected": datasets.Value("string"),
        "overall": datasets.ClassLabel(names=["chosen", "tie"]),
        **{dimension: datasets.ClassLabel(names=list(LABELS)) for dimension in dimensions},
        "strength": datasets.Value("int8"), "confidence": datasets.Value("int8"),
        "annotator": datasets.Value("int64"), "chosen_variant": datasets.Value("int64"),
        "rejected_variant": datasets.Value("int64"), "chosen_was_left": datasets.Value("bool"),
    })
    return datasets.Dataset.from_dict(columns, features=features)


def _orient(record: dict, root: Path) -> PreferencePair:
    left_wins = record["overall"] in ("a", "tie")
    chosen, rejected = (record["a"], record["b"]) if left_wins else (record["b"], record["a"])
    mine, theirs = ("a", "b") if left_wins else ("b", "a")
    relabel = {mine: "chosen", theirs: "rejected", "tie": "tie", "both_bad": "both_bad", "na": "na"}
    return PreferencePair(
        comparison=record["comparison"], round=record["round"], annotator=record["annotator"],
        chosen=root / chosen["rollout"], rejected=root / rejected["rollout"],
        chosen_variant=chosen["variant"], rejected_variant=rejected["variant"],
        chosen_checkpoint=chosen["checkpoint"], rejected_checkpoint=rejected["checkpoint"],
        overall="tie" if record["overall"] == "tie" else "chosen",
        labels={dimension: relabel[value] for dimension, value in record["labels"].items()},
        strength=record["strength"], confidence=record["confidence"], chosen_was_left=left_wins,
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
