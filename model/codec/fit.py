"""Fit the embedded spectral codec on espeak-ng speech and save it.

Why this exists: the shipped artifact under `model/assets/codec/` must be reproducible by the
project's own code. Run

    python -m model.codec.fit --out model/assets/codec

to regenerate it (a few minutes on two CPU cores). The sentences come from a seeded template
grammar and are voiced by several espeak-ng voices and pitches, including the identities' own.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from model.codec.metrics import log_spectral_distance
from model.codec.spectral import SpectralCodecConfig, SpectralRVQCodec
from model.data.speech import Voice, synthesize


@dataclass(frozen=True)
class FitConfig:
    """What speech the codec is fitted on."""

    sentences: int = 240  # ~14 min of speech, ~80k frames: ~80 per centroid of each codebook
    seed: int = 0  # the sentence grammar's draws
    voices: tuple[Voice, ...] = (
        Voice("en-us", 50),  # espeak-ng's default voice
        Voice("en-us+f3", 68),  # a high female voice (the "ada" identity's range)
        Voice("en-gb+m3", 38),  # a low male voice (the "ben" identity's range)
        Voice("en-gb-x-rp+f2", 58),
        Voice("en-us+m1", 30),
        Voice("en-029+f4", 80),
    )  # several voices and pitches so codebooks cover both parties of a dialogue


_SUBJECTS = ("I", "you", "we", "they", "my sister", "the teacher", "our neighbour", "a small dog",
             "the old man", "nobody", "everyone here", "the robot", "your friend", "the children")
_VERBS = ("found", "moved", "painted", "dropped", "wanted", "cleaned", "carried", "forgot",
          "opened", "borrowed", "counted", "ordered", "described", "pointed at", "picked up")
_OBJECTS = ("the red cup", "a blue ball", "the wooden box", "seven oranges", "the heavy door",
            "an umbrella", "the green bottle", "forty two pencils", "the tiny key", "a paper map",
            "the kitchen window", "my yellow jacket", "the last train ticket", "a cold glass of water")
_TAILS = ("yesterday evening", "before lunch", "at the station", "without asking anyone",
          "in a great hurry", "very carefully", "near the river", "on the top shelf", "again",
          "for the third time this week", "while it was raining", "at exactly nine o'clock")
_QUESTIONS = ("Could you tell me why {s} {v} {o}?", "Did {s} really say that {s2} {v} {o}?",
              "Where exactly is {o}?", "How many times have {s} {v} {o} {t}?",
              "Would you please hand me {o}?")
_EXCLAMATIONS = ("Oh no, {s} {v} {o} {t}!", "Wonderful, thank you so much!", "Well, that is strange.",
                 "Hmm, let me think about that for a moment.", "Yes, absolutely, {o} is right here.")


def sentences(count: int, seed: int) -> list[str]:
    """`count` varied English sentences from a seeded template grammar."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        fill = dict(s=rng.choice(_SUBJECTS), s2=rng.choice(_SUBJECTS), v=rng.choice(_VERBS),
                    o=rng.choice(_OBJECTS), t=rng.choice(_TAILS))
        kind = rng.random()
        if kind < 0.6:
            text = f"{fill['s']} {fill['v']} {fill['o']} {fill['t']}."
            out.append(text[0].upper() + text[1:])
        elif kind < 0.85:
            out.append(rng.choice(_QUESTIONS).format(**fill))
        else:
            out.append(rng.choice(_EXCLAMATIONS).format(**fill))
    return out


def fit(out: Path, fit_config: FitConfig = FitConfig(), codec_config: SpectralCodecConfig = SpectralCodecConfig()) -> SpectralRVQCodec:
    """Voice the corpus, fit the codec, save it with a card of facts and metrics."""
    rate = codec_config.mel.sample_rate
    texts = sentences(fit_config.sentences, fit_config.seed)
    waves = [
        synthesize(text, rate, fit_config.voices[i % len(fit_config.voices)])
        for i, text in enumerate(tqdm(texts, desc="voicing sentences (espeak-ng)"))
    ]
    with tqdm(total=codec_config.num_codebooks, desc="fitting codebooks (k-means)") as bar:
        codec = SpectralRVQCodec.fit(waves, codec_config, on_codebook=lambda _: bar.update())
    held_out = synthesize("The quick brown fox jumps over the lazy dog near the river bank.", rate, Voice("en-us+f3", 60))
    lsd = log_spectral_distance(held_out, codec.decode(codec.encode(held_out, rate)))
    card = {
        "data": f"{len(texts)} template sentences voiced by espeak-ng, {sum(w.numel() for w in waves) / rate:.0f} s",
        "voices": [dataclasses.asdict(v) for v in fit_config.voices],
        "held_out_log_spectral_distance_db": round(lsd, 3),
        "regenerate": "python -m model.codec.fit --out model/assets/codec",
    }
    codec.save(out, card)
    print(f"saved to {out}; held-out log-spectral distance {lsd:.2f} dB")
    return codec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for config.json + codec.safetensors")
    parser.add_argument("--sentences", type=int, default=FitConfig.sentences, help="number of sentences to voice")
    args = parser.parse_args()
    fit(args.out, FitConfig(sentences=args.sentences))


if __name__ == "__main__":
    main()
