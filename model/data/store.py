"""A generated dialogue corpus on disk: one safetensors file per clip and a manifest with their sha256.

Why this exists: generating a clip costs espeak-ng and codec time (~0.5-2 s each), and an evaluation
must be able to say exactly which clips it scored. ``write_corpus`` writes the clips of a training
split (seeds 0 ..) and a held-out split (seeds from model.data.dialogue.HELDOUT_SEED) once;
``read_corpus`` loads them back after checking every file against the manifest, and a missing or
corrupt file is a CorpusError that names it. Layout::

    DIR/manifest.json            format, dialogue config, splits (seeds), per-clip text fields,
                                 files {relative path: sha256}
    DIR/clips/<seed>.safetensors human_wave, agent_wave, human_codes, agent_codes, poses, agent_loudness
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from tqdm import tqdm

from model.codec import AudioCodec
from model.data.dialogue import DialogueClip, DialogueConfig, generate_clip
from model.render.scene import SceneObject

FORMAT = "her-dialogue-corpus-v1"
MANIFEST = "manifest.json"
TENSORS = ("human_wave", "agent_wave", "human_codes", "agent_codes", "poses", "agent_loudness")
FIELDS = ("question", "answer", "prompt", "identity", "human_span", "agent_span", "seed", "kind", "overlap",
          "overlap_span", "requested")


class CorpusError(ValueError):
    """A corpus directory that cannot be read as written: the message names the file."""


def write_corpus(directory: str | Path, codec: AudioCodec, train: range, heldout: range = range(0),
                 config: DialogueConfig = DialogueConfig(), progress: bool = True) -> Path:
    """Generate the clips of both splits into `directory` (created); returns the manifest's path."""
    directory = Path(directory)
    overlap = set(train) & set(heldout)
    if overlap:
        raise ValueError(f"seeds {sorted(overlap)[:5]} are in both the training and the held-out split")
    (directory / "clips").mkdir(parents=True, exist_ok=True)
    files, clips = {}, {}
    seeds = [*train, *heldout]
    for seed in tqdm(seeds, desc="corpus clips", disable=not progress):
        clip = generate_clip(seed, codec, config)
        name = f"clips/{seed}.safetensors"
        save_file({key: getattr(clip, key).contiguous() for key in TENSORS}, directory / name)
        files[name] = _sha256(directory / name)
        clips[str(seed)] = {**{key: getattr(clip, key) for key in FIELDS},
                            "objects": [dataclasses.asdict(obj) for obj in clip.objects]}
    manifest = {"format": FORMAT, "config": dataclasses.asdict(config),
                "splits": {"train": list(train), "heldout": list(heldout)}, "clips": clips, "files": files}
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=1))
    return path


def read_manifest(directory: str | Path) -> dict:
    """The manifest of `directory`, after checking that every file it lists is there and intact."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise CorpusError(f"{path} is missing: {directory} is not a corpus directory (model.data.store)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorpusError(f"{path} is corrupt: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorpusError(f"{path} is not a {FORMAT} manifest")
    for name, digest in manifest["files"].items():
        file = directory / name
        if not file.is_file():
            raise CorpusError(f"corpus file {file} is missing (listed in {path})")
        if _sha256(file) != digest:
            raise CorpusError(f"corpus file {file} is corrupt: its sha256 differs from the one in {path}")
    return manifest


def read_corpus(directory: str | Path, split: str = "train") -> list[DialogueClip]:
    """The clips of `split` ("train" or "heldout") in seed order, verified against the manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if split not in manifest["splits"]:
        raise CorpusError(f"{directory / MANIFEST} has no split {split!r}; it has {sorted(manifest['splits'])}")
    clips = []
    for seed in manifest["splits"][split]:
        name = f"clips/{seed}.safetensors"
        try:
            tensors = load_file(directory / name)
        except Exception as error:  # a listed file whose digest matched yet does not parse
            raise CorpusError(f"corpus file {directory / name} is corrupt: {error}") from None
        fields = dict(manifest["clips"][str(seed)])
        for key in ("human_span", "agent_span", "overlap_span"):
            fields[key] = None if fields[key] is None else tuple(fields[key])
        fields["objects"] = tuple(SceneObject(**{**obj, "position": tuple(obj["position"]),
                                                 "colour": tuple(obj["colour"])}) for obj in fields["objects"])
        clips.append(DialogueClip(**fields, **{key: tensors[key] for key in TENSORS}))
    return clips


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
