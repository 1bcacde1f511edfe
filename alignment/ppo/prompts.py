"""The human turns PPO answers: from a preference snapshot's rounds, or from the synthetic corpus.

A prompt is what the agent is conditioned on before it acts: the human's audio codes over the
episode (the turn from its start, then whatever silence followed it), the text prompt embedding and
the identity. Every prompt is cut to the run's `episode_frames`, so all rollouts have one length.
"""

from dataclasses import dataclass
from pathlib import Path

import torch

from model.agent import AgentConfig


class NoPrompts(ValueError):
    """The chosen source holds no usable human turn: the run cannot start."""


@dataclass(frozen=True)
class Prompt:
    """One human turn: codes (K, episode_frames * R), prompt embedding (P,) or None, identity, origin."""

    human_audio: torch.Tensor
    prompt: torch.Tensor | None
    identity: int | None
    source: str


def snapshot_prompts(path: str | Path, config: AgentConfig, episode_frames: int) -> list[Prompt]:
    """One prompt per round of a snapshot (both sides of a comparison answered the same turn)."""
    from alignment.snapshot import Snapshot
    from model.rollout_store import rollout_from_bytes

    snapshot = Snapshot.load(path)
    prompts, seen = [], set()
    for pair in snapshot.pairs():
        if pair.round in seen:
            continue
        seen.add(pair.round)
        rollout = rollout_from_bytes(Path(pair.chosen).read_bytes())
        if rollout.human_audio is None:
            continue
        prompts.append(_cut(rollout.human_audio, rollout.prompt, rollout.identity, f"snapshot round {pair.round}",
                            config, episode_frames))
    if not prompts:
        raise NoPrompts(f"snapshot {path} has no human turns to answer ({len(snapshot.records)} comparisons)")
    return prompts


def corpus_prompts(seeds: range, config: AgentConfig, episode_frames: int) -> list[Prompt]:
    """The human turns of synthetic dialogue clips `seeds` (model.data.dialogue), voiced by espeak-ng."""
    from model.codec import load_codec
    from model.data.dialogue import generate_clip
    from model.text import load_text_encoder

    if len(seeds) == 0:
        raise NoPrompts("no corpus seeds: corpus_prompts must be >= 1")
    codec = load_codec("default")
    clips = [generate_clip(seed, codec) for seed in seeds]
    texts = sorted({clip.prompt for clip in clips})
    embeddings = dict(zip(texts, load_text_encoder("default").encode(texts)))
    return [_cut(clip.human_codes, embeddings[clip.prompt], clip.identity % config.num_identities,
                 f"corpus seed {seed}", config, episode_frames) for seed, clip in zip(seeds, clips)]


def _cut(human_audio: torch.Tensor, prompt: torch.Tensor | None, identity: int | None, source: str,
         config: AgentConfig, episode_frames: int) -> Prompt:
    steps = episode_frames * config.audio_frames_per_video_frame
    if human_audio.shape[0] != config.num_codebooks or human_audio.shape[1] < steps:
        raise NoPrompts(f"{source}: human audio {tuple(human_audio.shape)} is shorter than the episode "
                        f"({config.num_codebooks} codebooks x {steps} audio frames)")
    if prompt is not None and prompt.shape != (config.prompt_dim,):
        raise NoPrompts(f"{source}: prompt embedding {tuple(prompt.shape)} does not fit the agent ({config.prompt_dim},)")
    return Prompt(human_audio[:, :steps].contiguous(), prompt, identity, source)
