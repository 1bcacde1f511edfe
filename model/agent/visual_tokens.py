"""How a frame's visuals become the agent's L2 continuous tokens of width D, and back.

The agent only sees tokens; a tokenizer maps one kind of visual to them. The embedded default is
motion: a pose vector (3 + 6 * 22 = 135 numbers), taken relative to the rest pose and scaled so
that everyday motion is of unit size (what the diffusion head models best), zero-padded to
L2 * D and split into L2 tokens. An untrained agent's tokens (roughly unit noise) thus decode to
a person fidgeting around the rest pose, not to a body flung off screen.
Pixel video (the paper's default): `DCTPixelTokenizer`, a fixed, unlearned stand-in for the
paper's TiTok-like 1D tokenizer with the same shapes (32 tokens x 16 dims): the frame's lowest
spatial frequencies (an orthonormal 2D DCT per colour channel, as in JPEG), so it encodes and
decodes real frames today; a learned tokenizer will be another implementation of this interface.
`make_visual_tokenizer` picks one by the name in `AgentConfig.visual_tokenizer`.

Example (pose of 5 numbers, L2 = 2 tokens of width D = 3)::

    PoseTokenizer(pose_dim=5, num_tokens=2, token_dim=3).encode(torch.tensor([1., 2., 3., 4., 5.]))
    -> tensor([[1., 2., 3.],
               [4., 5., 0.]])
"""

import math

import torch
import torch.nn.functional as F

from model.motion import POSE_DIM, rest_pose

# Typical size of a pose coordinate's deviation from rest: root displacement in metres and 6D
# rotation entries both move by about a tenth during conversation and reaching.
MOTION_SCALE = 0.1


class VisualTokenizer:
    """Maps frames (..., *frame_shape) to tokens (..., num_tokens, token_dim) and back.

    `produces` says what `decode` gives: "poses" (a renderer draws them) or "pixels" (RGB frames
    (..., H, W, 3) in [0, 1]).
    """

    num_tokens: int
    token_dim: int
    produces: str

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class PoseTokenizer(VisualTokenizer):
    """Pose vectors (..., pose_dim) as (pose - offset) / scale split into tokens; no learned parts,
    so decode(encode(x)) == x up to float rounding. Without an offset it is a plain split."""

    produces = "poses"

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


def _dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix (n, n): rows are frequencies, so its transpose inverts it."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    x = torch.arange(n, dtype=torch.float64)[None, :]
    matrix = torch.cos(math.pi * (x + 0.5) * k / n) * math.sqrt(2.0 / n)
    matrix[0] /= math.sqrt(2.0)
    return matrix.float()


class DCTPixelTokenizer(VisualTokenizer):
    """RGB frames (..., H, W, 3) in [0, 1] as the lowest 2D-DCT frequencies of each channel.

    Frames are resized to `grid` (area averaging), centred on grey, transformed per channel, and the
    num_tokens * token_dim // 3 lowest frequencies per channel (in order of u + v, as a zigzag
    does) become the tokens, divided by `scale` so they are of about unit size. Decoding returns
    frames at `grid`; callers resize them to the size they show.
    """

    produces = "pixels"

    def __init__(self, num_tokens: int = 32, token_dim: int = 16, grid: tuple[int, int] = (18, 32),
                 scale: float = 2.0) -> None:
        per_channel = num_tokens * token_dim // 3
        if not 1 <= per_channel <= grid[0] * grid[1]:
            raise ValueError(f"{num_tokens} x {token_dim} numbers do not fit 3 channels of a {grid} grid")
        self.num_tokens, self.token_dim, self.grid, self.scale = num_tokens, token_dim, grid, scale
        u, v = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
        order = sorted(range(grid[0] * grid[1]), key=lambda i: (int(u.flatten()[i] + v.flatten()[i]), i))
        self.kept = torch.tensor(order[:per_channel])  # flat indices of the kept frequencies
        self.rows, self.cols = _dct_matrix(grid[0]), _dct_matrix(grid[1])

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() < 3 or frames.shape[-1] != 3:
            raise ValueError(f"frames must have shape (..., H, W, 3), got {tuple(frames.shape)}")
        lead = frames.shape[:-3]
        images = frames.float().reshape(-1, *frames.shape[-3:]).permute(0, 3, 1, 2)  # (N, 3, H, W)
        small = F.interpolate(images, size=self.grid, mode="area") - 0.5  # (N, 3, h, w)
        rows, cols = self.rows.to(frames.device), self.cols.to(frames.device)
        coefficients = (rows @ small @ cols.T).flatten(-2)[..., self.kept.to(frames.device)]  # (N, 3, n)
        flat = F.pad(coefficients.flatten(1) / self.scale, (0, self.num_tokens * self.token_dim - 3 * self.kept.numel()))
        return flat.reshape(*lead, self.num_tokens, self.token_dim)  # (..., L2, D)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tuple(tokens.shape[-2:]) != (self.num_tokens, self.token_dim):
            raise ValueError(f"tokens must end in ({self.num_tokens}, {self.token_dim}), got {tuple(tokens.shape)}")
        lead, n = tokens.shape[:-2], self.kept.numel()
        coefficients = tokens.reshape(-1, self.num_tokens * self.token_dim)[:, : 3 * n].unflatten(1, (3, n))
        full = coefficients.new_zeros(coefficients.shape[0], 3, self.grid[0] * self.grid[1])
        full[..., self.kept.to(tokens.device)] = coefficients * self.scale
        rows, cols = self.rows.to(tokens.device), self.cols.to(tokens.device)
        images = rows.T @ full.unflatten(-1, self.grid) @ cols + 0.5  # (N, 3, h, w)
        return images.clamp(0, 1).permute(0, 2, 3, 1).reshape(*lead, *self.grid, 3)  # (..., h, w, 3)


def make_visual_tokenizer(kind: str, **kwargs) -> VisualTokenizer:
    """The tokenizer named by `kind` (AgentConfig.visual_tokenizer): "pose" or "pixel"."""
    kinds = {"pose": PoseTokenizer.for_motion, "pixel": DCTPixelTokenizer}
    if kind not in kinds:
        raise ValueError(f"unknown visual tokenizer {kind!r}; known: {sorted(kinds)}")
    return kinds[kind](**kwargs)
