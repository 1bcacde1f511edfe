"""How a frame's visuals become the agent's L2 continuous tokens of width D, and back.

The agent only sees tokens; a tokenizer maps one kind of visual to them. The embedded default is
motion: a pose vector (3 + 6 * 22 = 135 numbers), taken relative to the rest pose and scaled so
that everyday motion is of unit size (what the diffusion head models best), zero-padded to
L2 * D and split into L2 tokens. An untrained agent's tokens (roughly unit noise) thus decode to
a person fidgeting around the rest pose, not to a body flung off screen.
Pixel video (a TiTok-like 1D tokenizer, the paper's default) is a later implementation of the
same interface, chosen by name in `make_visual_tokenizer`.

Example (pose of 5 numbers, L2 = 2 tokens of width D = 3)::

    PoseTokenizer(pose_dim=5, num_tokens=2, token_dim=3).encode(torch.tensor([1., 2., 3., 4., 5.]))
    -> tensor([[1., 2., 3.],
               [4., 5., 0.]])
"""

import torch
import torch.nn.functional as F

from model.motion import POSE_DIM, rest_pose

# Typical size of a pose coordinate's deviation from rest: root displacement in metres and 6D
# rotation entries both move by about a tenth during conversation and reaching.
MOTION_SCALE = 0.1


class VisualTokenizer:
    """Maps frames (..., *frame_shape) to tokens (..., num_tokens, token_dim) and back."""

    num_tokens: int
    token_dim: int

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class PoseTokenizer(VisualTokenizer):
    """Pose vectors (..., pose_dim) as (pose - offset) / scale split into tokens; no learned parts,
    so decode(encode(x)) == x up to float rounding. Without an offset it is a plain split."""

    def __init__(self, pose_dim: int = POSE_DIM, num_tokens: int = 5, token_dim: int = 27,
                 offset: torch.Tensor | None = None, scale: float = 1.0) -> None:
        if num_tokens * token_dim < pose_dim:
            raise ValueError(f"{num_tokens} tokens of width {token_dim} cannot hold a pose of {pose_dim} numbers")
        if offset is not None and tuple(offset.shape) != (pose_dim,):
            raise ValueError(f"offset must have shape ({pose_dim},), got {tuple(offset.shape)}")
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.pose_dim, self.num_tokens, self.token_dim = pose_dim, num_tokens, token_dim
        self.offset = torch.zeros(pose_dim) if offset is None else offset.float()
        self.scale = scale

    @classmethod
    def for_motion(cls, num_tokens: int = 5, token_dim: int = 27) -> "PoseTokenizer":
        """The embedded default: model.motion poses around the rest pose, MOTION_SCALE to one."""
        return cls(POSE_DIM, num_tokens, token_dim, offset=rest_pose(), scale=MOTION_SCALE)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[-1] != self.pose_dim:
            raise ValueError(f"poses must end in dimension {self.pose_dim}, got shape {tuple(frames.shape)}")
        normalised = (frames - self.offset.to(frames)) / self.scale
        padded = F.pad(normalised, (0, self.num_tokens * self.token_dim - self.pose_dim))  # (..., L2 * D)
        return padded.unflatten(-1, (self.num_tokens, self.token_dim))  # (..., L2, D)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tuple(tokens.shape[-2:]) != (self.num_tokens, self.token_dim):
            raise ValueError(f"tokens must end in ({self.num_tokens}, {self.token_dim}), got {tuple(tokens.shape)}")
        normalised = tokens.flatten(-2)[..., : self.pose_dim]  # (..., pose_dim)
        return normalised * self.scale + self.offset.to(tokens)


def make_visual_tokenizer(kind: str, **kwargs) -> VisualTokenizer:
    """The tokenizer named by `kind`; only "pose" exists so far (pixel video is a separate issue)."""
    kinds = {"pose": PoseTokenizer.for_motion}
    if kind not in kinds:
        raise ValueError(f"unknown visual tokenizer {kind!r}; known: {sorted(kinds)}")
    return kinds[kind](**kwargs)
