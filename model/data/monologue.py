"""The agent's inner monologue: per video frame of a dialogue clip, the text token it says next.

Why this exists: an agent trained on codec codes alone never said words (in-domain WER 1.00
against the codec's ceiling of 0.16). Moshi's remedy is an inner monologue: the agent also predicts
its own text, time-aligned with its speech and a little ahead of it, so the audio follows a text
plan (model.agent: `AgentConfig.text_vocab`). This module makes that text stream for training.

Tokens are characters (TEXT_CHARS, lower-cased; anything else is dropped), one at most per frame,
token 0 = PAD ("nothing new this frame"); token j + 1 is TEXT_CHARS[j], TEXT_VOCAB in all.
Alignment: the answer's characters are spread evenly over the voiced frames of the answer's audio
(RMS above the dialogue's jaw floor, -45 dB; if an answer has fewer voiced frames than characters,
over its whole span), then moved LEAD_FRAMES earlier, so the text of a sound comes before it. An
interrupted answer's text stops where its audio stops: the characters are spread over the whole
answer as espeak-ng voices it (re-synthesised, deterministic), and those whose frame falls after
the agent fell silent are dropped. Everything else is PAD. Deterministic, like the clips.

This module is not among the corpus cache's generating sources (model.data.store): the text is
derived from a clip at batching time, so a change here never invalidates cached clips.
"""

from __future__ import annotations

import torch

from model.data.dialogue import DialogueClip, DialogueConfig
from model.data.speech import synthesize
from model.motion import IDENTITIES

TEXT_CHARS = " abcdefghijklmnopqrstuvwxyz0123456789'.,?!-"
PAD = 0
TEXT_VOCAB = 1 + len(TEXT_CHARS)  # 44
LEAD_FRAMES = 2  # 83 ms at 24 fps: codebook 0 of a sound comes two frames after its text


def normalise(text: str) -> str:
    """`text` as the monologue spells it: lower case, only TEXT_CHARS, single spaces, no ends."""
    kept = "".join(ch for ch in text.lower() if ch in TEXT_CHARS)
    return " ".join(kept.split())


def encode_text(text: str) -> list[int]:
    """The tokens of `text`'s characters (after `normalise`), no PAD."""
    return [1 + TEXT_CHARS.index(ch) for ch in normalise(text)]


def decode_text(tokens: torch.Tensor | list[int]) -> str:
    """The characters of text tokens in order, PAD skipped."""
    values = tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens
    return "".join(TEXT_CHARS[t - 1] for t in values if t != PAD)


def text_tokens(clip: DialogueClip, config: DialogueConfig = DialogueConfig(), lead: int = LEAD_FRAMES
                ) -> torch.Tensor:
    """(T,) long: the agent's text token at each video frame of `clip` (module docstring)."""
    per_frame = config.sample_rate // config.fps
    frames = clip.num_frames
    wave = clip.agent_wave
    if clip.overlap == "interruption":  # the clip's wave is cut: place the whole answer where it started
        full = synthesize(clip.answer, config.sample_rate, IDENTITIES[clip.identity].voice)
        start = _first_sound(wave) - _first_sound(full)
        wave = torch.zeros(max(wave.numel(), start + full.numel()))
        wave[start: start + full.numel()] = full
    wave = torch.cat([wave, wave.new_zeros(-wave.numel() % per_frame)])
    loud = wave.view(-1, per_frame).pow(2).mean(-1).sqrt() > 10 ** (config.loudness_floor_db / 20)  # (F,)
    voiced = loud.nonzero()[:, 0]
    chars = encode_text(clip.answer)
    if voiced.numel() < len(chars):  # too few voiced frames: the whole span, pauses included
        voiced = torch.arange(int(voiced[0]), int(voiced[-1]) + 1) if voiced.numel() else voiced
    if voiced.numel() < len(chars):
        raise ValueError(f"clip {clip.seed}: {len(chars)} characters do not fit {voiced.numel()} frames of speech")
    # Character j at the middle of its share of the voiced frames: strictly increasing frames.
    at = voiced[((torch.arange(len(chars)) + 0.5) * voiced.numel() / len(chars)).long()] - lead
    if at.numel() and at[0] < 0:
        raise ValueError(f"clip {clip.seed}: the answer starts within {lead} frames of the clip's start")
    tokens = torch.full((frames,), PAD, dtype=torch.long)
    spoken = at < clip.agent_span[1] - lead  # an interrupted answer's text stops where its audio stops
    tokens[at[spoken]] = torch.tensor(chars, dtype=torch.long)[spoken]
    return tokens


def _first_sound(wave: torch.Tensor) -> int:
    """Index of the first non-zero sample of `wave`."""
    nonzero = wave.nonzero()
    if not nonzero.numel():
        raise ValueError("the agent's wave is silent")
    return int(nonzero[0, 0])
