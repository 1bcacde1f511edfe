"""The training / scoring batch of the agent model: both parties' tokens and the controls, per frame.

Shapes (B clips, T video frames, R audio frames per video frame, S = T * R agent audio steps)::

    agent_audio   (B, K, S)         long   agent codes in the delay pattern (special = codebook size)
    agent_visual  (B, T, L2, D)     float  agent visual tokens
    human_audio   (B, K, T * R)     long   human codes, not delayed; frame i conditions on frame i - 1
    human_visual  (B, T, L2h, Dh)   float  human visual tokens; frame i conditions on frame i - 1
    prompt        (B, P)            float  text prompt embedding
    trajectory    (B, T, J * 3)     float  joint velocities wanted for the agent at frame i
    identity      (B,)              long   identity index
    scene         (B, N, F)         float  scene objects (model.agent.inputs.scene_features), if the agent reads them
    agent_text    (B, T)            long   the agent's monologue token per frame (agents with text_vocab > 0)

Each optional input is None when the whole batch lacks it; `present[name]` ((B,) or (B, T) bools)
marks which clips or frames have it (for the human's inputs: the human's frames, before the model
shifts them by one). Whatever is absent becomes that input's learned empty embedding. agent_text is
the agent's own output, not an input: None (or a clip without it) is PAD, "nothing said". All clips
of a batch have the same T: there is no padding.
"""

from dataclasses import dataclass, field

import torch

from model.agent.config import AgentConfig
from model.agent.delay_pattern import build_delay_pattern
from model.agent.inputs import SCENE_FEATURES

OPTIONAL_INPUTS = ("human_audio", "human_visual", "prompt", "trajectory", "identity", "scene")


@dataclass
class AgentBatch:
    agent_audio: torch.Tensor
    agent_visual: torch.Tensor
    human_audio: torch.Tensor | None = None
    human_visual: torch.Tensor | None = None
    prompt: torch.Tensor | None = None
    trajectory: torch.Tensor | None = None
    identity: torch.Tensor | None = None
    scene: torch.Tensor | None = None
    agent_text: torch.Tensor | None = None
    present: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.agent_visual.shape[0]

    @property
    def num_frames(self) -> int:
        return self.agent_visual.shape[1]

    @property
    def device(self) -> torch.device:
        """Where the batch lives; everything the model derives from it is created there too."""
        return self.agent_visual.device

    @classmethod
    def from_codes(cls, agent_codes: torch.Tensor, agent_visual: torch.Tensor, config: AgentConfig, **inputs
                   ) -> "AgentBatch":
        """Build a batch from the agent's plain codes (B, K, F >= T * R), applying the delay pattern.

        The delayed stream is cut at T * R steps: the upper codebooks of the last K - 1 audio frames
        fall beyond the clip and are not trained on.
        """
        steps = agent_visual.shape[1] * config.audio_frames_per_video_frame
        if agent_codes.shape[-1] < steps:
            raise ValueError(f"agent_codes has {agent_codes.shape[-1]} audio frames, the clip needs {steps}")
        tokens, _ = build_delay_pattern(agent_codes, config.special_token)
        return cls(agent_audio=tokens[..., :steps], agent_visual=agent_visual, **inputs)

    def validate(self, config: AgentConfig) -> None:
        """Raise ValueError naming the first input whose shape does not fit `config`."""
        b, t = self.agent_visual.shape[:2]
        k, r = config.num_codebooks, config.audio_frames_per_video_frame
        expected = {
            "agent_audio": (b, k, t * r),
            "agent_visual": (b, t, config.visual_tokens, config.visual_token_dim),
            "human_audio": (b, k, t * r),
            "human_visual": (b, t, config.human_visual_tokens, config.human_visual_token_dim),
            "prompt": (b, config.prompt_dim),
            "trajectory": (b, t, config.trajectory_dim),
            "identity": (b,),
            "scene": (b, config.scene_objects, SCENE_FEATURES),
            "agent_text": (b, t),
        }
        if self.scene is not None and not config.scene_objects:
            raise ValueError("AgentBatch.scene is given but the agent has no scene input (scene_objects = 0)")
        if self.agent_text is not None and not config.text_vocab:
            raise ValueError("AgentBatch.agent_text is given but the agent has no text stream (text_vocab = 0)")
        if _outside(self.agent_text, 0, config.text_vocab):
            raise ValueError(f"agent_text tokens must lie in [0, {config.text_vocab})")
        for name, shape in expected.items():
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"AgentBatch.{name} must have shape {shape}, got {tuple(value.shape)}")
        for name in ("agent_audio", *OPTIONAL_INPUTS):
            value = getattr(self, name)
            if value is not None and value.device != self.device:
                raise ValueError(f"AgentBatch.{name} is on {value.device}, the batch on {self.device}")
        if _outside(self.agent_audio, 0, config.special_token + 1):
            raise ValueError(f"agent_audio tokens must lie in [0, {config.special_token}]")
        if _outside(self.human_audio, 0, config.codebook_size):
            raise ValueError(f"human_audio codes must lie in [0, {config.codebook_size})")
        if _outside(self.identity, 0, config.num_identities):
            raise ValueError(f"identity must lie in [0, {config.num_identities})")
        for name, mask in self.present.items():
            if name not in OPTIONAL_INPUTS:
                raise ValueError(f"present[{name!r}]: only optional inputs {OPTIONAL_INPUTS} can be absent")
            if tuple(mask.shape) not in ((b,), (b, t)) or mask.dtype != torch.bool:
                raise ValueError(f"present[{name!r}] must be a bool tensor of shape ({b},) or ({b}, {t})")
            if mask.device != self.device:
                raise ValueError(f"present[{name!r}] is on {mask.device}, the batch on {self.device}")

    @classmethod
    def concat(cls, batches: "list[AgentBatch]") -> "AgentBatch":
        """Stack batches of the same number of frames along the batch dimension.

        An input one batch lacks and another has becomes zeros marked absent in `present`.
        """
        if not batches:
            raise ValueError("concat needs at least one batch")
        frames = {batch.num_frames for batch in batches}
        if len(frames) > 1:
            raise ValueError(f"batches must have the same number of frames, got {sorted(frames)}")
        t = frames.pop()
        fields = {name: torch.cat([getattr(batch, name) for batch in batches]) for name in ("agent_audio", "agent_visual")}
        texts = [batch.agent_text for batch in batches]
        if any(text is not None for text in texts):  # a clip without text said nothing: PAD (0)
            fields["agent_text"] = torch.cat([batch.agent_visual.new_zeros(batch.batch_size, t, dtype=torch.long)
                                              if text is None else text for batch, text in zip(batches, texts)])
        present = {}
        for name in OPTIONAL_INPUTS:
            values = [getattr(batch, name) for batch in batches]
            template = next((v for v in values if v is not None), None)
            fields[name] = None if template is None else torch.cat(
                [template.new_zeros((batch.batch_size, *template.shape[1:])) if value is None else value
                 for batch, value in zip(batches, values)])
            # Decided from the structure, not the values: no device sync, and it works on `meta`.
            if template is not None and any(v is None or name in batch.present for batch, v in zip(batches, values)):
                present[name] = torch.cat([_frame_mask(batch, name, t) for batch in batches])
        return cls(**fields, present=present)

    @classmethod
    def random(cls, config: AgentConfig, batch_size: int, frames: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> "AgentBatch":
        """A batch of random tokens with every input present: for smoke tests and benchmarks.

        Drawn on the generator's device (the CPU by default), then moved to `device`.
        """
        b, t, k, r = batch_size, frames, config.num_codebooks, config.audio_frames_per_video_frame

        def codes(*shape: int, high: int = config.codebook_size) -> torch.Tensor:
            return torch.randint(0, high, shape, generator=generator)

        def normal(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator)

        batch = cls.from_codes(
            codes(b, k, t * r), normal(b, t, config.visual_tokens, config.visual_token_dim), config,
            human_audio=codes(b, k, t * r),
            human_visual=normal(b, t, config.human_visual_tokens, config.human_visual_token_dim),
            prompt=normal(b, config.prompt_dim),
            trajectory=normal(b, t, config.trajectory_dim),
            identity=codes(b, high=config.num_identities),
            agent_text=codes(b, t, high=config.text_vocab) if config.text_vocab else None,
        )
        return batch if device is None else batch.to(device)

    def to(self, device: torch.device | str) -> "AgentBatch":
        """The same batch with every tensor on `device`."""
        def move(value: torch.Tensor | None) -> torch.Tensor | None:
            return None if value is None else value.to(device)

        return AgentBatch(**{name: move(getattr(self, name)) for name in ("agent_audio", "agent_visual", "agent_text", *OPTIONAL_INPUTS)},
                          present={name: mask.to(device) for name, mask in self.present.items()})


def _outside(values: torch.Tensor | None, low: int, high: int) -> bool:
    """Whether integer `values` leave [low, high). Tensors on the meta device carry no values to check."""
    if values is None or not values.numel() or values.device.type == "meta":
        return False
    return bool(values.min() < low or values.max() >= high)


def _frame_mask(batch: AgentBatch, name: str, frames: int) -> torch.Tensor:
    """(B, T) presence of input `name` in `batch`."""
    b = batch.batch_size
    if getattr(batch, name) is None:
        return torch.zeros(b, frames, dtype=torch.bool, device=batch.device)
    mask = batch.present.get(name, torch.ones(b, dtype=torch.bool, device=batch.device))
    return mask if mask.dim() == 2 else mask[:, None].expand(b, frames)
