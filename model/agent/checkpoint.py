"""The checkpoint directory format: config.json + model.safetensors + a short card.

Loading never unpickles: weights are read with safetensors only, and a file that is not a
safetensors file (a torch.save pickle, say) is refused before anything reads it.
"""

import json
import struct
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
README_FILE = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def write_checkpoint(path: str | Path, config: dict, state_dict: dict[str, torch.Tensor], card: dict | None) -> Path:
    """Write a checkpoint directory; the card holds what a reader needs: data, steps, metrics."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file({name: tensor.detach().contiguous() for name, tensor in state_dict.items()}, str(path / WEIGHTS_FILE))
    card = {"data": None, "steps": None, "metrics": {}, **(card or {})}
    (path / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    (path / README_FILE).write_text(_readme(card))
    return path


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """Read (config, state dict, card) from a checkpoint directory."""
    path = Path(path)
    if path.is_file():
        raise ValueError(f"{path} is a file; a checkpoint is a directory with {CONFIG_FILE} and {WEIGHTS_FILE}"
                         + (" (pickle checkpoints are refused: convert them to safetensors)"
                            if path.suffix in PICKLE_SUFFIXES else ""))
    if not (path / CONFIG_FILE).is_file():
        raise ValueError(f"{path} is not a checkpoint directory: {CONFIG_FILE} is missing")
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        hint = f"; found {pickles}, but pickle checkpoints are refused: convert them to safetensors" if pickles else ""
        raise ValueError(f"{path} has no {WEIGHTS_FILE}{hint}")
    check_safetensors(weights)
    config = json.loads((path / CONFIG_FILE).read_text())
    card = json.loads((path / CARD_FILE).read_text()) if (path / CARD_FILE).is_file() else {}
    return config, load_file(str(weights)), card


def check_safetensors(path: Path) -> None:
    """Refuse anything that is not a safetensors file: an 8-byte header length, then a JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    if len(head) < 9 or head[8:9] != b"{" or struct.unpack("<Q", head[:8])[0] > size - 8:
        kind = "a pickle (torch.save) file" if head[:1] == b"\x80" or head[:2] == b"PK" else "not a safetensors file"
        raise ValueError(f"{path} is {kind}; checkpoints are loaded from safetensors only, never unpickled")


def _readme(card: dict) -> str:
    metrics = card.get("metrics") or {}
    lines = ["# Agent checkpoint", "", f"- data: {card.get('data')}", f"- steps: {card.get('steps')}"]
    lines += [f"- {name}: {value}" for name, value in sorted(metrics.items())]
    lines += ["", f"Weights: `{WEIGHTS_FILE}` (safetensors); configuration: `{CONFIG_FILE}`.", ""]
    return "\n".join(lines)
