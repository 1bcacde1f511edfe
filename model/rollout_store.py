"""Rollouts on disk: one safetensors file per sampled candidate, readable without Django.

Workers store what G sampled for each candidate (tokens, the diffusion chain and every
log-probability) so that preference snapshots can hand the exact samples to reward-model and
PPO training. Tensors go in the file's tensors, sampling parameters in its string metadata.
"""

import dataclasses
import json

from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from model.agent import Rollout, SamplingParams

_TENSOR_FIELDS = ("audio_tokens", "audio_log_probs", "audio_sampled", "visual_tokens", "visual_chain",
                  "visual_log_probs", "human_audio", "human_visual", "prompt", "trajectory")
_PRESENT_PREFIX = "present."


def rollout_to_bytes(rollout: Rollout) -> bytes:
    """Serialise a rollout to safetensors bytes (no pickle anywhere)."""
    tensors = {name: getattr(rollout, name).contiguous() for name in _TENSOR_FIELDS
               if getattr(rollout, name) is not None}
    tensors.update({_PRESENT_PREFIX + name: mask.contiguous() for name, mask in rollout.present.items()})
    metadata = {
        "format": "her-rollout-v1",
        "params": json.dumps(dataclasses.asdict(rollout.params)),
        "identity": json.dumps(rollout.identity),
    }
    return save_safetensors(tensors, metadata=metadata)


def rollout_from_bytes(data: bytes) -> Rollout:
    """Read back what ``rollout_to_bytes`` wrote; a file of another format is refused."""
    tensors = load_safetensors(data)
    metadata = _metadata(data)
    if metadata.get("format") != "her-rollout-v1":
        raise ValueError(f"not a rollout file (format {metadata.get('format')!r}, expected 'her-rollout-v1')")
    present = {key[len(_PRESENT_PREFIX):]: value for key, value in tensors.items() if key.startswith(_PRESENT_PREFIX)}
    return Rollout(
        **{name: tensors.get(name) for name in _TENSOR_FIELDS},
        params=SamplingParams(**json.loads(metadata["params"])),
        identity=json.loads(metadata["identity"]),
        present=present,
    )


def _metadata(data: bytes) -> dict[str, str]:
    """The string metadata of safetensors bytes (the header is JSON after an 8-byte length)."""
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8: 8 + header_length])
    return header.get("__metadata__", {})
