"""Residual vector quantisation fitted by k-means, the codec's discrete bottleneck.

Why this exists: the embedded codec has no neural encoder to train; k-means codebooks applied to
successive residuals give K codes per frame where each extra codebook refines the previous ones,
the same coarse-to-fine structure as DAC's RVQ that the MusicGen delay pattern assumes.

    >>> books = torch.tensor([[[0.0], [10.0]], [[-1.0], [1.0]]])  # (K=2, C=2, D=1)
    >>> quantize(torch.tensor([[9.2], [0.9]]), books)  # 9.2 ~ 10 - 1, 0.9 ~ 0 + 1
    tensor([[1, 0],
            [0, 1]])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

_CHUNK = 8192  # rows per distance matrix, bounds memory at 8192 x 1024 floats (32 MB)


def nearest(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (C, D) for each point (N, D), shape (N,)."""
    centroid_norms = (centroids * centroids).sum(1)  # (C,)
    out = []
    for chunk in points.split(_CHUNK):
        distances = centroid_norms[None, :] - 2.0 * chunk @ centroids.T  # (n, C), |x|^2 dropped
        out.append(distances.argmin(1))
    return torch.cat(out)


def _kmeans_plus_plus(points: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Spread-out initial centroids (Arthur & Vassilvitskii 2007)."""
    first = torch.randint(len(points), (1,), generator=generator)
    centroids = [points[first]]
    closest = ((points - centroids[0]) ** 2).sum(1)  # (N,)
    for _ in range(count - 1):
        weights = closest.clamp(min=0) + 1e-12
        pick = torch.multinomial(weights, 1, generator=generator)
        centroids.append(points[pick])
        closest = torch.minimum(closest, ((points - points[pick]) ** 2).sum(1))
    return torch.cat(centroids)


def kmeans(points: torch.Tensor, count: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means on (N, D); returns centroids (count, D). Empty clusters are re-seeded."""
    if len(points) < count:
        raise ValueError(f"k-means needs at least {count} points for {count} centroids, got {len(points)}")
    centroids = _kmeans_plus_plus(points, count, generator)
    for _ in range(iterations):
        assignment = nearest(points, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=count).to(points.dtype)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            # Move dead centroids onto the points that are currently worst represented.
            error = ((points - centroids[assignment]) ** 2).sum(1)
            centroids[empty] = points[error.topk(int(empty.sum())).indices]
    return centroids


def fit_residual_codebooks(
    points: torch.Tensor,
    num_codebooks: int,
    codebook_size: int,
    iterations: int,
    seed: int,
    on_codebook: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Fit K codebooks, each on the residual left by the previous ones; returns (K, C, D)."""
    generator = torch.Generator().manual_seed(seed)
    residual = points.clone()
    books = []
    for k in range(num_codebooks):
        book = kmeans(residual, codebook_size, iterations, generator)
        residual = residual - book[nearest(residual, book)]
        books.append(book)
        if on_codebook is not None:
            on_codebook(k)
    return torch.stack(books)


def quantize(points: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """Residual codes (K, N) of points (N, D) under codebooks (K, C, D)."""
    residual = points
    codes = []
    for book in codebooks:
        index = nearest(residual, book)
        residual = residual - book[index]
        codes.append(index)
    return torch.stack(codes)


def dequantize(codes: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """Sum of the chosen codebook entries: codes (K, N) -> points (N, D)."""
    return sum(book[index] for book, index in zip(codebooks, codes))
