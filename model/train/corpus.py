"""Dialogue clips as the agent's training examples, and the collator that batches them.

Every batch holds clips from their first frame, as a response sampled by model.respond starts
(its frame 0 is the human's first frame, before anyone speaks); windows cut from the middle of a
clip taught an earlier run to start talking at frame 0, over the human. Shorter clips of a batch
are extended to the longest with their own last frame (both parties silent, as in a clip's tail),
so no clip loses its answer.

Turn weights: the agent's audio steps from the human's first word to a little after the agent's
own onset (listening, the gap, the first syllable) weigh `turn_weight` times the rest in the
audio loss. One onset per clip among hundreds of silent steps is otherwise too faint a signal:
the shipped agent learnt a flat onset hazard (~0.004 per step everywhere), which sampling at
temperature 0.7 shrinks ~40-fold into silence (see ARCHITECTURE.md, the default agent's recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from model.agent import AgentBatch, AgentConfig, PoseTokenizer
from model.agent.inputs import scene_features
from model.codec import AudioCodec
from model.data.dialogue import DialogueConfig, generate_clip
from model.data.monologue import TEXT_VOCAB, text_tokens
from model.data.store import cached_clips
from model.render.scene import SceneObject
from model.text import TextEncoder


@dataclass
class TrainingClip:
    """One clip as the agent sees it: codes (K, T * R), visual tokens (T, L2, D), prompt (P,)."""

    agent_codes: torch.Tensor
    human_codes: torch.Tensor
    visual: torch.Tensor
    prompt: torch.Tensor
    identity: int
    human_span: tuple[int, int] = (0, 0)  # (first, end) frames of the human's turn
    agent_span: tuple[int, int] = (0, 0)  # (first, end) frames of the agent's answer
    objects: tuple[SceneObject, ...] = ()  # the scene, read by agents with a scene input
    text: torch.Tensor | None = None  # (T,) the agent's monologue (model.data.monologue), for agents with text

    @property
    def num_frames(self) -> int:
        return self.visual.shape[0]


def build_corpus(seeds: range, codec: AudioCodec, text_encoder: TextEncoder, agent_config: AgentConfig,
                 dialogue_config: DialogueConfig = DialogueConfig(), progress: bool = True,
                 cache: bool = True) -> list[TrainingClip]:
    """The clips of `seeds` as the agent's tokens: read from the corpus cache, generating there only
    what it lacks (model.data.store.cached_clips), or all generated anew without `cache`. An agent
    with the text stream gets each clip's monologue tokens (model.data.monologue.text_tokens)."""
    if agent_config.text_vocab and agent_config.text_vocab != TEXT_VOCAB:
        raise ValueError(f"the corpus's monologue has {TEXT_VOCAB} text tokens, the agent {agent_config.text_vocab}")
    poses = PoseTokenizer.for_motion(agent_config.visual_tokens, agent_config.visual_token_dim)
    if cache:
        clips = cached_clips(seeds, codec, dialogue_config, progress)
    else:
        clips = [generate_clip(seed, codec, dialogue_config) for seed in tqdm(seeds, desc="dialogue clips",
                                                                                disable=not progress)]
    prompts = sorted({clip.prompt for clip in clips})
    embeddings = dict(zip(prompts, text_encoder.encode(prompts)))
    return [TrainingClip(agent_codes=clip.agent_codes, human_codes=clip.human_codes, visual=poses.encode(clip.poses),
                         prompt=embeddings[clip.prompt], identity=clip.identity, human_span=clip.human_span,
                         agent_span=clip.agent_span, objects=clip.objects,
                         text=text_tokens(clip, dialogue_config) if agent_config.text_vocab else None)
            for clip in clips]


def window_batch(clips: list[TrainingClip], frames: int, config: AgentConfig,
                 prompt_present: torch.Tensor | None = None, visual: bool = True) -> AgentBatch:
    """The first `frames` frames of each clip (a shorter one extended by its last frame) as a batch
    (human video and trajectory absent, as in a
    response sampled from audio alone). Without `visual` the agent's visual tokens are all zeros (the
    rest pose, still): stage 1 learns nothing visual and its visual loss is masked."""
    r = config.audio_frames_per_video_frame
    codes = torch.stack([_edge_pad(c.agent_codes, frames * r, 1) for c in clips])  # (B, K, T * R)
    tokens = torch.stack([_edge_pad(c.visual, frames, 0) for c in clips])  # (B, T, L2, D)
    batch = AgentBatch.from_codes(
        codes, tokens if visual else torch.zeros_like(tokens), config,
        human_audio=torch.stack([_edge_pad(c.human_codes, frames * r, 1) for c in clips]),
        prompt=torch.stack([c.prompt for c in clips]),  # (B, P)
        identity=torch.tensor([c.identity for c in clips]),
        scene=torch.stack([scene_features(c.objects, config.scene_objects) for c in clips])
        if config.scene_objects else None,  # (B, N, F)
        agent_text=torch.stack([_pad_text(c.text, frames) for c in clips]) if config.text_vocab else None,  # (B, T)
    )
    if prompt_present is not None:
        batch.present = {"prompt": prompt_present}
    return batch


def turn_weights(clips: list[TrainingClip], frames: int, config: AgentConfig, weight: float,
                 onset_seconds: float = 0.25) -> torch.Tensor:
    """(B, T * R) audio-step weights: `weight` from the human's first frame to `onset_seconds`
    after the agent's first, 1 elsewhere."""
    r = config.audio_frames_per_video_frame
    weights = torch.ones(len(clips), frames * r)
    for row, clip in zip(weights, clips):
        first, onset = clip.human_span[0], clip.agent_span[0] + round(onset_seconds * config.fps)
        row[first * r: onset * r] = weight
    return weights


def _pad_text(text: torch.Tensor | None, length: int) -> torch.Tensor:
    """A clip's monologue cut or extended with PAD (its tail says nothing) to `length` frames."""
    if text is None:
        raise ValueError("the agent has a text stream but the clip carries no text (build_corpus with its config)")
    return torch.cat([text[:length], text.new_zeros(max(0, length - text.numel()))])


def _edge_pad(values: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    """`values` cut or extended along `dim` to `length` by repeating its last entry."""
    have = values.shape[dim]
    if have >= length:
        return values.narrow(dim, 0, length)
    last = values.narrow(dim, have - 1, 1)
    return torch.cat([values, last.expand(*[length - have if d == dim else -1 for d in range(values.dim())])], dim)


class ClipDataset(Dataset):
    """The clips, indexable, for the Trainer's (distributed) sampler."""

    def __init__(self, clips: list[TrainingClip]) -> None:
        if not clips:
            raise ValueError("the training corpus is empty")
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> TrainingClip:
        return self.clips[index]


@dataclass
class ClipCollator:
    """Clips -> {"batch": AgentBatch, "audio_weights": (B, S)}: from frame 0, extended to the longest
    clip and cut to `window_frames`; the prompt dropped with probability `prompt_dropout` (so its
    empty embedding is trained); turn steps weighted `turn_weight`."""

    config: AgentConfig
    window_frames: int
    prompt_dropout: float
    visual: bool
    seed: int = 0
    turn_weight: float = 1.0

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, clips: list[TrainingClip]) -> dict[str, AgentBatch]:
        frames = min(self.window_frames, max(c.num_frames for c in clips))
        present = torch.rand(len(clips), generator=self.generator) >= self.prompt_dropout
        return {"batch": window_batch(clips, frames, self.config, present, visual=self.visual),
                "audio_weights": turn_weights(clips, frames, self.config, self.turn_weight)}
