"""A sampled agent response: what was drawn, its log-probabilities, and what it was conditioned on.

model.rollout_store writes and reads rollouts as safetensors files.
"""

from dataclasses import dataclass, field

import torch

from model.agent.batch import AgentBatch
from model.agent.delay_pattern import revert_delay_pattern
from model.agent.sampling import SamplingParams


@dataclass
class Rollout:
    """One sampled agent response and what it was conditioned on.

    audio_tokens / audio_sampled: (K, S) delayed tokens and the positions that were sampled (the
    rest hold the special token). audio_log_probs (K, S): each token's log-probability under the
    full distribution at the sampling temperature (what PPO uses: finite under any weights);
    audio_sampling_log_probs (K, S): under the exact sampling distribution (after the top-k cut;
    equal to the former without top-k). visual_tokens (T, L2, D); visual_chain
    (T, steps + 1, L2, D) latents from noise to the tokens; visual_log_probs (T, steps - 1, L2).
    Inputs as in AgentBatch without the batch dimension; `present[name]` (T,) marks the frames of
    human inputs / trajectory the session actually received. An agent with the text stream also
    records text_tokens (T,), its monologue (model.data.monologue), and their log-probabilities
    text_log_probs / text_sampling_log_probs (T,), as for audio; all None without it.

    `params` sampled the frames from 0; a rollout continued by a session with other parameters
    lists each continuation in `continued` as (first frame, params), so every frame is scored
    under the parameters that really sampled it (`segments()`).
    """

    audio_tokens: torch.Tensor
    audio_log_probs: torch.Tensor
    audio_sampled: torch.Tensor
    visual_tokens: torch.Tensor
    visual_chain: torch.Tensor
    visual_log_probs: torch.Tensor
    params: SamplingParams
    human_audio: torch.Tensor | None = None
    human_visual: torch.Tensor | None = None
    prompt: torch.Tensor | None = None
    trajectory: torch.Tensor | None = None
    identity: int | None = None
    scene: torch.Tensor | None = None  # (N, F) the scene objects it saw, when the agent reads a scene
    present: dict[str, torch.Tensor] = field(default_factory=dict)
    audio_sampling_log_probs: torch.Tensor | None = None  # None: no top-k, the same as audio_log_probs
    continued: tuple[tuple[int, SamplingParams], ...] = ()
    text_tokens: torch.Tensor | None = None
    text_log_probs: torch.Tensor | None = None
    text_sampling_log_probs: torch.Tensor | None = None  # None: no top-k, the same as text_log_probs

    def __post_init__(self) -> None:
        if self.audio_sampling_log_probs is None:
            self.audio_sampling_log_probs = self.audio_log_probs
        if self.text_sampling_log_probs is None:
            self.text_sampling_log_probs = self.text_log_probs
        if (self.text_tokens is None) != (self.text_log_probs is None):
            raise ValueError("a rollout's text tokens and their log-probabilities come together")
        starts = [start for start, _ in self.continued]
        if starts != sorted(set(starts)) or (starts and not (0 < starts[0] and starts[-1] < self.num_frames)):
            raise ValueError(f"continuations must start at increasing frames in (0, {self.num_frames}), got {starts}")

    @property
    def num_frames(self) -> int:
        return self.visual_tokens.shape[0]

    def segments(self) -> list[tuple[int, int, SamplingParams]]:
        """(first frame, end frame, params) of every stretch sampled with one set of parameters."""
        starts = [(0, self.params), *self.continued]
        ends = [start for start, _ in starts[1:]] + [self.num_frames]
        return [(start, end, params) for (start, params), end in zip(starts, ends)]

    @property
    def audio_codes(self) -> torch.Tensor:
        """The complete audio frames (K, S - K + 1): the last K - 1 frames still miss upper codebooks."""
        return revert_delay_pattern(self.audio_tokens)

    def to_batch(self) -> AgentBatch:
        """This rollout as a batch of one, for scoring by the policy, a reference or a reward model."""
        def one(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x[None]

        return AgentBatch(
            agent_audio=self.audio_tokens[None], agent_visual=self.visual_tokens[None],
            human_audio=one(self.human_audio), human_visual=one(self.human_visual), prompt=one(self.prompt),
            trajectory=one(self.trajectory), scene=one(self.scene), agent_text=one(self.text_tokens),
            identity=None if self.identity is None else torch.tensor([self.identity], device=self.audio_tokens.device),
            present={name: mask[None] for name, mask in self.present.items()},
        )
