"""Dialogue clips as the agent's training examples, and the collator that batches them.

Every batch holds clips from their first frame, as a response sampled by model.respond starts
(its frame 0 is the human's first frame, before anyone speaks); windows cut from the middle of a
clip taught an earlier run to start talking at frame 0, over the human. Clips of a batch are cut
to the shortest of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from model.agent import AgentBatch, AgentConfig, PoseTokenizer
from model.codec import AudioCodec
from model.data.dialogue import DialogueConfig, generate_clip
from model.text import TextEncoder


@dataclass
class TrainingClip:
    """One clip as the agent sees it: codes (K, T * R), visual tokens (T, L2, D), prompt (P,)."""

    agent_codes: torch.Tensor
    human_codes: torch.Tensor
    visual: torch.Tensor
    prompt: torch.Tensor
    identity: int

    @property
    def num_frames(self) -> int:
        return self.visual.shape[0]


def build_corpus(seeds: range, codec: AudioCodec, text_encoder: TextEncoder, agent_config: AgentConfig,
                 dialogue_config: DialogueConfig = DialogueConfig(), progress: bool = True) -> list[TrainingClip]:
    """Generate the clips of `seeds` and turn them into the agent's tokens."""
    poses = PoseTokenizer.for_motion(agent_config.visual_tokens, agent_config.visual_token_dim)
    clips = [generate_clip(seed, codec, dialogue_config) for seed in tqdm(seeds, desc="dialogue clips",
                                                                            disable=not progress)]
    prompts = sorted({clip.prompt for clip in clips})
    embeddings = dict(zip(prompts, text_encoder.encode(prompts)))
    return [TrainingClip(agent_codes=clip.agent_codes, human_codes=clip.human_codes, visual=poses.encode(clip.poses),
                         prompt=embeddings[clip.prompt], identity=clip.identity) for clip in clips]


def window_batch(clips: list[TrainingClip], frames: int, config: AgentConfig,
                 prompt_present: torch.Tensor | None = None, visual: bool = True) -> AgentBatch:
    """The first `frames` frames of each clip as a batch (human video and trajectory absent, as in a
    response sampled from audio alone). Without `visual` the agent's visual tokens are all zeros (the
    rest pose, still): stage 1 learns nothing visual and its visual loss is masked."""
    r = config.audio_frames_per_video_frame
    codes = torch.stack([c.agent_codes[:, : frames * r] for c in clips])  # (B, K, T * R)
    tokens = torch.stack([c.visual[:frames] for c in clips])  # (B, T, L2, D)
    batch = AgentBatch.from_codes(
        codes, tokens if visual else torch.zeros_like(tokens), config,
        human_audio=torch.stack([c.human_codes[:, : frames * r] for c in clips]),
        prompt=torch.stack([c.prompt for c in clips]),  # (B, P)
        identity=torch.tensor([c.identity for c in clips]),
    )
    if prompt_present is not None:
        batch.present = {"prompt": prompt_present}
    return batch


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
    """Clips -> {"batch": AgentBatch}: from frame 0, cut to the shortest clip and to `window_frames`;
    the prompt dropped with probability `prompt_dropout` (so its empty embedding is trained)."""

    config: AgentConfig
    window_frames: int
    prompt_dropout: float
    visual: bool
    seed: int = 0

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, clips: list[TrainingClip]) -> dict[str, AgentBatch]:
        frames = min(self.window_frames, *(c.num_frames for c in clips))
        present = torch.rand(len(clips), generator=self.generator) >= self.prompt_dropout
        return {"batch": window_batch(clips, frames, self.config, present, visual=self.visual)}
