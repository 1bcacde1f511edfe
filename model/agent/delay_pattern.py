"""MusicGen's delay pattern for K residual codebooks.

Codebook k is shifted right by k steps, so one autoregressive step predicts all K codebooks at once
while codebook k of an audio frame still sees codebooks < k of the same frame (they were emitted at
earlier steps). Positions that hold no code are the special token (= codebook size); they are
masked out of the loss, never filled with a real code.

Example (K = 2 codebooks, F = 3 frames, codebook size 9, so the special token is 9)::

    codes = [[1, 2, 3],
             [4, 5, 6]]
    tokens, valid = build_delay_pattern(codes, special_token=9)
    tokens == [[1, 2, 3, 9],
               [9, 4, 5, 6]]
    valid  == [[True,  True,  True,  False],
               [False, True,  True,  True ]]
    revert_delay_pattern(tokens) == codes
"""

import torch


def build_delay_pattern(codes: torch.Tensor, special_token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Delay codes (..., K, F) into tokens (..., K, F + K - 1) plus the mask of positions holding a code."""
    if codes.dim() < 2:
        raise ValueError(f"codes must have shape (..., K, F), got {tuple(codes.shape)}")
    if codes.numel() and (codes.min() < 0 or codes.max() >= special_token):
        raise ValueError(f"codes must lie in [0, {special_token}); the special token {special_token} marks empty positions")
    num_codebooks, num_frames = codes.shape[-2:]
    steps = num_frames + num_codebooks - 1
    tokens = codes.new_full((*codes.shape[:-1], steps), special_token)  # (..., K, S)
    valid = delay_valid_mask(num_codebooks, steps, num_frames, device=codes.device)  # (K, S)
    for k in range(num_codebooks):
        tokens[..., k, k : k + num_frames] = codes[..., k, :]
    return tokens, valid.expand(tokens.shape).clone()


def revert_delay_pattern(tokens: torch.Tensor) -> torch.Tensor:
    """Undo the delay: tokens (..., K, S) -> the S - K + 1 complete frames (..., K, S - K + 1)."""
    if tokens.dim() < 2:
        raise ValueError(f"tokens must have shape (..., K, S), got {tuple(tokens.shape)}")
    num_codebooks, steps = tokens.shape[-2:]
    num_frames = steps - num_codebooks + 1
    if num_frames < 0:
        raise ValueError(f"{steps} steps hold no complete frame of {num_codebooks} delayed codebooks")
    return torch.stack([tokens[..., k, k : k + num_frames] for k in range(num_codebooks)], dim=-2)


def delay_valid_mask(
    num_codebooks: int, steps: int, num_frames: int | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """(K, S) mask of positions that hold a code: k <= s < k + F (F unbounded when None, as when sampling)."""
    step = torch.arange(steps, device=device)[None, :]  # (1, S)
    k = torch.arange(num_codebooks, device=device)[:, None]  # (K, 1)
    valid = step >= k
    if num_frames is not None:
        valid &= step < k + num_frames
    return valid
