"""A sampled agent response: what was drawn, its log-probabilities, and what it was conditioned on."""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from model.agent.batch import AgentBatch
from model.agent.checkpoint import check_safetensors
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

    _TENSORS = ("audio_tokens", "audio_log_probs", "audio_sampled", "visual_tokens", "visual_chain",
                "visual_log_probs", "human_audio", "human_visual", "prompt", "trajectory")

    def save(self, path: str | Path) -> None:
        """One safetensors file: the tensors, with the sampling parameters and identity as metadata."""
        tensors = {name: getattr(self, name).contiguous() for name in self._TENSORS if getattr(self, name) is not None}
        tensors.update({f"present.{name}": mask.contiguous() for name, mask in self.present.items()})
        metadata = {"params": json.dumps(dataclasses.asdict(self.params)), "identity": json.dumps(self.identity)}
        save_file({name: t.cpu() for name, t in tensors.items()}, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> "Rollout":
        """Read a rollout written by `save`; anything but a safetensors file is refused."""
        check_safetensors(Path(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        present = {name.removeprefix("present."): tensors.pop(name) for name in list(tensors) if name.startswith("present.")}
        return cls(params=SamplingParams(**json.loads(metadata["params"])), identity=json.loads(metadata["identity"]),
                   present=present, **{name: tensors.get(name) for name in cls._TENSORS})

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
