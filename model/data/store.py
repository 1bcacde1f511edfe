"""A generated dialogue corpus on disk: one safetensors file per clip and a manifest with their sha256.

Why this exists: generating a clip costs espeak-ng and codec time (~0.5-2 s each), and an evaluation
must be able to say exactly which clips it scored. ``write_corpus`` writes the clips of a training
split (seeds 0 ..) and a held-out split (seeds from model.data.dialogue.HELDOUT_SEED) once;
``read_corpus`` loads them back after checking every file against the manifest, and a missing or
corrupt file is a CorpusError that names it. Layout::

    DIR/manifest.json            format, dialogue config, splits (seeds), per-clip text fields,
                                 files {relative path: sha256}
    DIR/clips/<seed>.safetensors human_wave, agent_wave, human_codes, agent_codes, poses, agent_loudness

The same layout is the corpus cache (``cached_clips``): training generates each clip once per machine
instead of once per rank and stage (320 clips are ~5-9 min of espeak-ng and codec time on two
cores). Its directory, ``$HER_CACHE_DIR/corpus/<key>`` (model.cache.cache_root), is keyed by what
decides a clip besides its seed: the dialogue config, the codec's fingerprint, the generating code
(GENERATOR_SOURCES), espeak-ng's and torch's versions and FORMAT; seeds name the files inside it, so
corpora of 8 and 320 clips share theirs. Its one split, "cached", lists every seed it holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load, load_file, save
from tqdm import tqdm

from model.cache import cache_root
from model.codec import AudioCodec
from model.data.dialogue import DialogueClip, DialogueConfig, generate_clip
from model.data.speech import espeak_version
from model.render.scene import SceneObject

FORMAT = "her-dialogue-corpus-v1"
MANIFEST = "manifest.json"
TENSORS = ("human_wave", "agent_wave", "human_codes", "agent_codes", "poses", "agent_loudness")
FIELDS = ("question", "answer", "prompt", "identity", "human_span", "agent_span", "seed", "kind", "overlap",
          "overlap_span", "requested")
# The project's code that decides a clip besides its seed, config and codec weights (paths under
# model/): an edit to any of it gives new cache keys, so no clip of older code is read back.
GENERATOR_SOURCES = ("data/dialogue.py", "data/speech.py", "media.py", "codec", "motion", "render/scene.py")
CACHE_SPLIT = "cached"


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
        name, digest, fields = _save_clip(directory, generate_clip(seed, codec, config))
        files[name], clips[str(seed)] = digest, fields
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
        if _sha256(file.read_bytes()) != digest:
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
        name = _clip_name(seed)
        try:
            tensors = load_file(directory / name)
        except Exception as error:  # a listed file whose digest matched yet does not parse
            raise CorpusError(f"corpus file {directory / name} is corrupt: {error}") from None
        clips.append(_clip(manifest["clips"][str(seed)], tensors))
    return clips


def cache_key(codec: AudioCodec, config: DialogueConfig = DialogueConfig()) -> dict:
    """Everything that decides a generated clip besides its seed (see the module docstring)."""
    package = Path(__file__).resolve().parent.parent  # model/
    sources = hashlib.sha256()
    for entry in GENERATOR_SOURCES:
        for file in sorted((package / entry).rglob("*.py")) if (package / entry).is_dir() else [package / entry]:
            sources.update(file.relative_to(package).as_posix().encode() + b"\0" + file.read_bytes())
    key = {"format": FORMAT, "config": dataclasses.asdict(config), "codec": codec.fingerprint,
           "generator": sources.hexdigest(), "espeak": espeak_version(), "torch": torch.__version__}
    return json.loads(json.dumps(key))  # as a manifest reads it back (tuples as lists), so the two compare equal


def corpus_cache_dir(codec: AudioCodec, config: DialogueConfig = DialogueConfig(), root: Path | None = None) -> Path:
    """The cache directory of clips generated with `codec` and `config`: ROOT/corpus/<digest of cache_key>."""
    digest = hashlib.sha256(json.dumps(cache_key(codec, config), sort_keys=True).encode()).hexdigest()
    return (root or cache_root()) / "corpus" / digest[:32]


def cached_clips(seeds: Iterable[int], codec: AudioCodec, config: DialogueConfig = DialogueConfig(),
                 progress: bool = True, root: Path | None = None) -> list[DialogueClip]:
    """The clips of `seeds` in order, read from the corpus cache (`corpus_cache_dir`); those it lacks are
    generated and added, and a cached file that is missing or fails its sha256 is regenerated (with a
    warning), never read. Concurrent callers are safe: additions happen under an exclusive lock of the
    directory, and every file and the manifest are replaced whole."""
    seeds, key = list(seeds), cache_key(codec, config)
    directory = corpus_cache_dir(codec, config, root)
    clips, _ = _cached(directory, _cache_manifest(directory, key), seeds)
    missing = [seed for seed in seeds if seed not in clips]
    if not missing:
        return [clips[seed] for seed in seeds]
    (directory / "clips").mkdir(parents=True, exist_ok=True)
    with _locked(directory / ".lock"):
        manifest = _cache_manifest(directory, key, warn=True)  # another process may have added some meanwhile
        found, problems = _cached(directory, manifest, missing)
        for problem in problems:
            warnings.warn(f"{problem}: regenerating it", RuntimeWarning, stacklevel=2)
        clips |= found
        for seed in tqdm([seed for seed in missing if seed not in clips], desc="dialogue clips (into the cache)",
                         disable=not progress):
            clips[seed] = generate_clip(seed, codec, config)
            name, digest, fields = _save_clip(directory, clips[seed])
            manifest["files"][name], manifest["clips"][str(seed)] = digest, fields
        manifest["splits"][CACHE_SPLIT] = sorted(int(seed) for seed in manifest["clips"])
        _replace(directory / MANIFEST, json.dumps(manifest, indent=1).encode())
    return [clips[seed] for seed in seeds]


def _cache_manifest(directory: Path, key: dict, warn: bool = False) -> dict:
    """The cache's manifest, or an empty one where there is none or it is unreadable (then all is regenerated)."""
    empty = {"format": FORMAT, "config": key["config"], "key": key, "splits": {CACHE_SPLIT: []}, "clips": {},
             "files": {}}
    path = directory / MANIFEST
    if not path.is_file():
        return empty
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        if warn:
            warnings.warn(f"{path} is corrupt or not this cache's: regenerating its clips", RuntimeWarning,
                          stacklevel=3)
        return empty
    return manifest


def _cached(directory: Path, manifest: dict, seeds: list[int]) -> tuple[dict[int, DialogueClip], list[str]]:
    """The clips of `seeds` the cache holds intact, and what is wrong with the listed ones that are not."""
    clips, problems = {}, []
    for seed in seeds:
        name = _clip_name(seed)
        if name not in manifest["files"] or str(seed) not in manifest["clips"]:
            continue
        file = directory / name
        if not file.is_file():
            problems.append(f"cached corpus file {file} is missing")
            continue
        data = file.read_bytes()
        if _sha256(data) != manifest["files"][name]:
            problems.append(f"cached corpus file {file} is corrupt: its sha256 differs from the manifest's")
            continue
        clips[seed] = _clip(manifest["clips"][str(seed)], load(data))
    return clips, problems


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created) while the block runs; released if the process dies."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole: readers see the old file or the new one, never a part."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _clip_name(seed: int) -> str:
    return f"clips/{seed}.safetensors"


def _save_clip(directory: Path, clip: DialogueClip) -> tuple[str, str, dict]:
    """Write `clip`'s tensors; returns its file's name, the file's sha256 and the clip's manifest fields."""
    data = save({key: getattr(clip, key).contiguous() for key in TENSORS})
    name = _clip_name(clip.seed)
    _replace(directory / name, data)
    fields = {**{key: getattr(clip, key) for key in FIELDS}, "objects": [dataclasses.asdict(obj) for obj in clip.objects]}
    return name, _sha256(data), fields


def _clip(fields: dict, tensors: dict[str, torch.Tensor]) -> DialogueClip:
    """A clip from its manifest fields (JSON lists back to tuples) and its file's tensors."""
    fields = dict(fields)
    for key in ("human_span", "agent_span", "overlap_span"):
        fields[key] = None if fields[key] is None else tuple(fields[key])
    fields["objects"] = tuple(SceneObject(**{**obj, "position": tuple(obj["position"]),
                                             "colour": tuple(obj["colour"])}) for obj in fields["objects"])
    return DialogueClip(**fields, **{key: tensors[key] for key in TENSORS})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
