"""The corpus cache (model.data.store.cached_clips): training reads clips generated once, identical to
a fresh generation, never a corrupt file, never another config's or codec's clips; `python -m
model.train` fills it before it launches the ranks."""

import dataclasses

import pytest
import torch

from model.agent import AgentConfig
from model.codec import SpectralRVQCodec
from model.data import store
from model.data.dialogue import DialogueConfig, generate_clip
from model.data.store import cached_clips, corpus_cache_dir, read_corpus, read_manifest
from model.text import load_text_encoder
from model.train import sft
from model.train.corpus import TrainingClip, build_corpus


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("HER_CACHE_DIR", str(tmp_path))
    return tmp_path


def _generated(monkeypatch, clip_of=None) -> list[int]:
    """Record the seeds the store generates; `clip_of(seed)` stands in for generate_clip when given."""
    seeds = []

    def generate(seed, codec, config=DialogueConfig()):
        seeds.append(seed)
        return clip_of(seed) if clip_of else generate_clip(seed, codec, config)

    monkeypatch.setattr(store, "generate_clip", generate)
    return seeds


def _assert_same(a: TrainingClip, b: TrainingClip) -> None:
    for field in dataclasses.fields(TrainingClip):
        x, y = getattr(a, field.name), getattr(b, field.name)
        assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, field.name


def test_a_second_build_reads_the_cache_and_equals_a_fresh_generation(default_codec, cache_root, monkeypatch):
    encoder, config = load_text_encoder("default"), AgentConfig.named("tiny")
    fresh = build_corpus(range(2), default_codec, encoder, config, progress=False, cache=False)
    generated = _generated(monkeypatch)
    build_corpus(range(1), default_codec, encoder, config, progress=False)
    build_corpus(range(2), default_codec, encoder, config, progress=False)
    assert generated == [0, 1]  # each clip once: the second build generated only the clip the cache lacked
    cached = build_corpus(range(2), default_codec, encoder, config, progress=False)
    assert generated == [0, 1]
    for a, b in zip(cached, fresh, strict=True):
        _assert_same(a, b)
    directory = corpus_cache_dir(default_codec)
    assert directory.parent == cache_root / "corpus"
    assert [clip.seed for clip in read_corpus(directory, "cached")] == [0, 1]  # a corpus directory like any


def test_a_corrupt_or_missing_cached_file_is_regenerated_never_read(default_codec, cache_root, monkeypatch):
    real = generate_clip(0, default_codec)
    generated = _generated(monkeypatch, lambda seed: dataclasses.replace(real))
    cached_clips([0], default_codec, progress=False)
    file = corpus_cache_dir(default_codec) / "clips" / "0.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[:-8] + bytes(8))  # still a valid safetensors file, with other tensor values
    with pytest.warns(RuntimeWarning, match=r"0\.safetensors is corrupt"):
        (clip,) = cached_clips([0], default_codec, progress=False)
    assert generated == [0, 0] and torch.equal(clip.poses, real.poses) and file.read_bytes() == data
    read_manifest(file.parent.parent)  # the manifest matches its files again
    file.unlink()
    with pytest.warns(RuntimeWarning, match=r"0\.safetensors is missing"):
        cached_clips([0], default_codec, progress=False)
    assert generated == [0, 0, 0]
    (file.parent.parent / "manifest.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="manifest.json is corrupt"):
        cached_clips([0], default_codec, progress=False)
    assert generated == [0, 0, 0, 0]
    cached_clips([0], default_codec, progress=False)
    assert generated == [0, 0, 0, 0]


def test_another_config_codec_generator_or_root_is_another_cache(default_codec, tmp_path, monkeypatch):
    directory = corpus_cache_dir(default_codec, root=tmp_path)
    assert corpus_cache_dir(default_codec, DialogueConfig(), root=tmp_path) == directory
    assert corpus_cache_dir(default_codec, DialogueConfig(pause_seconds=(0.3, 0.8)), root=tmp_path) != directory
    codebooks = default_codec.codebooks.clone()
    codebooks[0, 0, 0] += 1e-3
    other = SpectralRVQCodec(default_codec.config, codebooks, default_codec.mean, default_codec.std)
    assert corpus_cache_dir(other, root=tmp_path) != directory
    assert corpus_cache_dir(default_codec, root=tmp_path / "elsewhere") != directory
    monkeypatch.setattr(store, "GENERATOR_SOURCES", store.GENERATOR_SOURCES[:-1])
    assert corpus_cache_dir(default_codec, root=tmp_path) != directory


def test_the_train_command_fills_the_cache_before_it_launches_the_ranks(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(sft, "cached_clips", lambda seeds, codec: events.append(("cache", list(seeds))))
    monkeypatch.setattr(sft.subprocess, "call", lambda command: events.append(("launch", command[:1])) or 0)
    argv = ["--stage", "audio", "--out", str(tmp_path), "--clips", "3", "--ranks", "2"]
    assert sft.main(argv) == 0
    launcher = sft.launch_command(argv, 2)[:1]
    assert events == [("cache", [0, 1, 2]), ("launch", launcher)]
    events.clear()
    assert sft.main([*argv, "--corpus_cache", "False"]) == 0
    assert events == [("launch", launcher)]
