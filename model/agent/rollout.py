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

    audio_tokens / audio_log_probs / audio_sampled: (K, S) delayed tokens, their log-probs and the
    positions that were sampled (the rest hold the special token). visual_tokens (T, L2, D);
    visual_chain (T, steps + 1, L2, D) latents from noise to the tokens; visual_log_probs
    (T, steps - 1, L2). Inputs as in AgentBatch without the batch dimension; `present[name]` (T,)
    marks the frames of human inputs / trajectory the session actually received.
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
    present: dict[str, torch.Tensor] = field(default_factory=dict)

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
            trajectory=one(self.trajectory),
            identity=None if self.identity is None else torch.tensor([self.identity], device=self.audio_tokens.device),
            present={name: mask[None] for name, mask in self.present.items()},
        )
