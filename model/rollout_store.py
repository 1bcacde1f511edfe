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

_TENSOR_FIELDS = ("audio_tokens", "audio_log_probs", "audio_sampling_log_probs", "audio_sampled", "visual_tokens",
                  "visual_chain", "visual_log_probs", "human_audio", "human_visual", "prompt", "trajectory",
                  "scene", "text_tokens", "text_log_probs", "text_sampling_log_probs")
FORMAT = "her-rollout-v2"  # v2 added the full-distribution log-probs and per-segment parameters
# Optional tensors (scene, the monologue's text_*) are absent from files of agents without them,
# and from files written before them: those load with None.
_PRESENT_PREFIX = "present."


def rollout_to_bytes(rollout: Rollout) -> bytes:
    """Serialise a rollout to safetensors bytes (no pickle anywhere)."""
    tensors = {name: getattr(rollout, name).contiguous() for name in _TENSOR_FIELDS
               if getattr(rollout, name) is not None}
    tensors.update({_PRESENT_PREFIX + name: mask.contiguous() for name, mask in rollout.present.items()})
    if rollout.audio_sampling_log_probs is rollout.audio_log_probs:  # no top-k: store the tensor once
        tensors.pop("audio_sampling_log_probs")
    if rollout.text_tokens is not None and rollout.text_sampling_log_probs is rollout.text_log_probs:
        tensors.pop("text_sampling_log_probs")
    metadata = {
        "format": FORMAT,
        "params": json.dumps(dataclasses.asdict(rollout.params)),
        "continued": json.dumps([[start, dataclasses.asdict(params)] for start, params in rollout.continued]),
        "identity": json.dumps(rollout.identity),
    }
    return save_safetensors(tensors, metadata=metadata)


def rollout_from_bytes(data: bytes) -> Rollout:
    """Read back what ``rollout_to_bytes`` wrote; a file of another format is refused."""
    tensors = load_safetensors(data)
    metadata = _metadata(data)
    if metadata.get("format") not in (FORMAT, "her-rollout-v1"):
        raise ValueError(f"not a rollout file (format {metadata.get('format')!r}, expected {FORMAT!r})")
    params = SamplingParams(**json.loads(metadata["params"]))
    if metadata["format"] == "her-rollout-v1" and params.top_k is not None:
        # v1 stored only the top-k log-probabilities; the full-distribution ones PPO needs are unknown.
        raise ValueError("a her-rollout-v1 file sampled with top_k has no full-distribution log-probabilities; "
                         "score its tokens again with AgentModel.log_probs")
    present = {key[len(_PRESENT_PREFIX):]: value for key, value in tensors.items() if key.startswith(_PRESENT_PREFIX)}
    continued = tuple((start, SamplingParams(**fields)) for start, fields in json.loads(metadata.get("continued", "[]")))
    return Rollout(
        **{name: tensors.get(name) for name in _TENSOR_FIELDS},
        params=params, continued=continued,
        identity=json.loads(metadata["identity"]),
        present=present,
    )


def _metadata(data: bytes) -> dict[str, str]:
    """The string metadata of safetensors bytes (the header is JSON after an 8-byte length)."""
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8: 8 + header_length])
    return header.get("__metadata__", {})
