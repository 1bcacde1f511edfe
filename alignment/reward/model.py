"""The reward model: G's backbone and input embeddings under scalar heads, one shared and one per dimension.

It reads an exchange exactly as G does (an `AgentBatch`: the human's turn and the agent's audio and
visual tokens in G's frame layout) and scores it from the backbone's output at the last position of
the clip, which under causal attention has seen the whole exchange. Heads: ``overall`` (the shared
head, trained on the overall verdict) and, optionally, one per judged dimension (trained only on that
dimension's labels). Scores are ``head(h) + offset``: `normalise` sets the offsets so the reference
policy's samples score mean 0 on every head.

Clips of different lengths are batched by right-padding (`pad_batches`); since no position sees a
later one, padding cannot change a clip's score, and `scores(batch, lengths)` reads each clip at its
own last frame.

Checkpoints are directories: ``config.json`` (the agent's configuration and the heads),
``model.safetensors`` and ``card.json`` (snapshot hash, base checkpoint, metrics). Loading never
unpickles, and `from_pretrained(..., agent=...)` refuses a reward model whose backbone does not fit
that agent checkpoint (`BackboneMismatch`), before any training starts.
"""

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from model.agent import AgentBatch, AgentConfig, AgentModel
from model.agent.checkpoint import CONFIG_FILE, WEIGHTS_FILE, read_checkpoint, write_checkpoint

OVERALL = "overall"
REWARD_FORMAT = "her-reward-model-v1"
# The AgentConfig fields that shape the backbone and its inputs: a reward model fits an agent only
# when all of them agree (sampling-only fields such as diffusion steps do not matter to it).
_SHAPE_FIELDS = ("num_codebooks", "codebook_size", "audio_frames_per_video_frame", "visual_tokens",
                 "visual_token_dim", "human_visual_tokens", "human_visual_token_dim", "prompt_dim",
                 "trajectory_dim", "num_identities", "backbone")


class BackboneMismatch(ValueError):
    """A reward model and an agent checkpoint do not share a backbone shape: one cannot stand for the other."""


class RewardModel(nn.Module):
    """r(exchange) per head: `scores(batch)` -> {"overall": (B,), dimension: (B,) ...}.

    ``trunk`` is an `AgentModel` without its audio and diffusion heads (G's backbone and input
    embeddings); ``heads`` maps each head name to a linear layer H -> 1.
    """

    def __init__(self, config: AgentConfig, dimensions: Sequence[str] = ()) -> None:
        super().__init__()
        if OVERALL in dimensions or len(set(dimensions)) != len(dimensions):
            raise ValueError(f"dimensions must be distinct and must not include {OVERALL!r}, got {list(dimensions)}")
        self.config = config
        self.dimensions = tuple(dimensions)
        self.trunk = AgentModel(config)
        # G's next-token heads are replaced by the scalar heads: the reward model never samples.
        self.trunk.audio_head = None
        self.trunk.diffusion = None
        h = config.hidden_size
        self.heads = nn.ModuleDict({name: nn.Linear(h, 1) for name in self.head_names})
        for head in self.heads.values():
            # Stiennon et al. 2020: std 1 / sqrt(d + 1) keeps the initial scores near unit scale.
            nn.init.normal_(head.weight, std=1 / math.sqrt(h + 1))
            nn.init.zeros_(head.bias)
        self.register_buffer("offsets", torch.zeros(len(self.head_names)))
        _disable_dropout(self)

    @property
    def head_names(self) -> tuple[str, ...]:
        return (OVERALL, *self.dimensions)

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def from_agent(cls, agent: "AgentModel | str | Path", dimensions: Sequence[str] = ()) -> "RewardModel":
        """A new reward model whose backbone and input embeddings are copied from agent G (a model or a checkpoint)."""
        if not isinstance(agent, AgentModel):
            agent = AgentModel.from_pretrained(str(agent))
        model = cls(agent.config, dimensions)
        state = {name: value for name, value in agent.state_dict().items()
                 if name.startswith(("backbone.", "embedder."))}
        missing, unexpected = model.trunk.load_state_dict(state, strict=False)
        if unexpected or any(name.startswith(("backbone.", "embedder.")) for name in missing):
            raise BackboneMismatch(f"agent weights do not fit its own configuration: missing {missing}, "
                                   f"unexpected {unexpected}")
        return model

    # --- scoring ---------------------------------------------------------------------------------

    def forward(self, batch: AgentBatch, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Raw head outputs plus offsets, (B, number of heads), in `head_names` order."""
        hidden = self.trunk.hidden_states(batch)  # (B, T, P, H)
        if lengths is None:
            last = hidden[:, -1, -1]  # (B, H)
        else:
            if lengths.shape != (batch.batch_size,) or lengths.min() < 1 or lengths.max() > batch.num_frames:
                raise ValueError(f"lengths must be ({batch.batch_size},) frame counts in [1, {batch.num_frames}]")
            last = hidden[torch.arange(batch.batch_size, device=hidden.device), lengths - 1, -1]  # (B, H)
        raw = torch.cat([self.heads[name](last) for name in self.head_names], dim=-1)  # (B, heads)
        return raw + self.offsets

    def scores(self, batch: AgentBatch, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Each head's score (B,) for a batch: "overall" first, then the dimensions."""
        values = self(batch, lengths)
        return {name: values[:, i] for i, name in enumerate(self.head_names)}

    @torch.no_grad()
    def normalise(self, reference: Iterable[tuple[AgentBatch, torch.Tensor | None]]) -> dict[str, float]:
        """Shift every head so the reference samples score mean 0; returns the offsets now applied.

        `reference` yields (batch, lengths) pairs of the reference policy's samples.
        """
        total, count = torch.zeros_like(self.offsets), 0
        self.offsets.zero_()
        for batch, lengths in reference:
            total += self(batch, lengths).sum(0)
            count += batch.batch_size
        if count == 0:
            raise ValueError("normalise needs at least one reference sample")
        self.offsets.copy_(-total / count)
        return dict(zip(self.head_names, self.offsets.tolist()))

    # --- checkpoints -----------------------------------------------------------------------------

    def save_pretrained(self, path: str | Path, card: dict | None = None) -> Path:
        """Write config.json, model.safetensors and card.json (say there which snapshot it was trained on)."""
        config = {"format": REWARD_FORMAT, "agent": self.config.to_dict(), "dimensions": list(self.dimensions)}
        return write_checkpoint(path, config, self.state_dict(), {"kind": "reward-model", **(card or {})})

    @classmethod
    def from_pretrained(cls, path: str | Path, agent: "str | Path | AgentConfig | None" = None) -> "RewardModel":
        """Load a reward model; with `agent`, first refuse it unless its backbone fits that agent checkpoint."""
        config = read_reward_config(path)
        if agent is not None:
            check_backbone(config, agent)
        _, state, _ = read_checkpoint(path)
        model = cls(config, read_reward_dimensions(path))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{path}: the weights do not match its config.json: {exc}") from exc
        return model.eval()


def read_reward_config(path: str | Path) -> AgentConfig:
    """The agent configuration a reward model directory was built on (no weights are read)."""
    data = _read_json(Path(path) / CONFIG_FILE)
    if data.get("format") != REWARD_FORMAT:
        raise ValueError(f"{path} is not a reward model (format {data.get('format')!r}, expected {REWARD_FORMAT!r})")
    return AgentConfig.from_dict(data["agent"])


def read_reward_dimensions(path: str | Path) -> tuple[str, ...]:
    return tuple(_read_json(Path(path) / CONFIG_FILE)["dimensions"])


def read_agent_config(agent: "str | Path | AgentConfig") -> AgentConfig:
    """An agent checkpoint's configuration, read from its config.json alone (cheap: no weights)."""
    if isinstance(agent, AgentConfig):
        return agent
    data = _read_json(Path(agent) / CONFIG_FILE)
    if data.get("format") == REWARD_FORMAT:
        return AgentConfig.from_dict(data["agent"])
    return AgentConfig.from_dict(data)


def check_backbone(reward: "str | Path | AgentConfig", agent: "str | Path | AgentConfig") -> None:
    """Raise BackboneMismatch naming the fields where a reward model and an agent checkpoint differ."""
    a = read_reward_config(reward) if not isinstance(reward, AgentConfig) else reward
    b = read_agent_config(agent)
    differ = [f"{name}: {getattr(a, name)!r} != {getattr(b, name)!r}" for name in _SHAPE_FIELDS
              if getattr(a, name) != getattr(b, name)]
    if differ:
        raise BackboneMismatch(f"the reward model's backbone does not match {agent}: " + "; ".join(differ))


def weights_sha256(checkpoint: str | Path) -> str:
    """The SHA-256 of a checkpoint's weights file: how a card names the exact base it started from."""
    digest = hashlib.sha256()
    with open(Path(checkpoint) / WEIGHTS_FILE, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pad_batches(batches: Sequence[AgentBatch], special_token: int) -> tuple[AgentBatch, torch.Tensor]:
    """Right-pad single-length batches to the longest and stack them: (batch, lengths in frames).

    Padded agent audio is the delay pattern's special token, everything else zeros marked absent in
    `present`; no real position attends to a padded one, so scores at `lengths` are unchanged.
    """
    frames = [batch.num_frames for batch in batches]
    longest = max(frames)
    padded = []
    for batch, t in zip(batches, frames):
        extra = longest - t
        if extra == 0:
            padded.append(batch)
            continue
        r = batch.agent_audio.shape[-1] // t
        pad_time = functools.partial(_pad_time, frames=extra)
        present = {}
        for name, mask in batch.present.items():
            mask = mask if mask.dim() == 2 else mask[:, None].expand(batch.batch_size, t)
            present[name] = pad_time(mask, 1, value=False)
        for name in ("human_audio", "human_visual", "trajectory"):
            if getattr(batch, name) is not None and name not in present:
                present[name] = pad_time(torch.ones(batch.batch_size, t, dtype=torch.bool), 1, value=False)
        padded.append(AgentBatch(
            agent_audio=pad_time(batch.agent_audio, 2, r, special_token),
            agent_visual=pad_time(batch.agent_visual, 1),
            human_audio=pad_time(batch.human_audio, 2, r),
            human_visual=pad_time(batch.human_visual, 1),
            prompt=batch.prompt, trajectory=pad_time(batch.trajectory, 1), identity=batch.identity,
            present=present,
        ))
    return AgentBatch.concat(padded), torch.tensor(frames)


def _pad_time(x: torch.Tensor | None, dim: int, per_frame: int = 1, value: float = 0, *, frames: int
              ) -> torch.Tensor | None:
    """`x` with `frames` * `per_frame` entries of `value` appended along `dim`."""
    if x is None:
        return None
    shape = list(x.shape)
    shape[dim] = frames * per_frame
    return torch.cat([x, x.new_full(shape, value)], dim=dim)


def _disable_dropout(module: nn.Module) -> None:
    """Dropout off everywhere: a reward model's scores must not depend on a random draw."""
    for sub in module.modules():
        if isinstance(sub, nn.Dropout):
            sub.p = 0.0
    backbone_config = module.trunk.backbone.config
    if hasattr(backbone_config, "attention_dropout"):
        backbone_config.attention_dropout = 0.0


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path.parent} is not a checkpoint directory: {path.name} is missing")
    return json.loads(path.read_text())
