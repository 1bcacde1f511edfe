"""Intelligibility: word error rate of the agent's speech against the answer it should have given.

Why this exists: a codec-token agent can sound like speech and say nothing. An offline
recognizer, pocketsphinx, transcribes the agent's channel; its wheel ships an English acoustic
model and a general language model, so nothing is downloaded. The general model does poorly on
espeak-ng voices (~0.75 WER on clean corpus answers), so an in-domain trigram model is also built
from the corpus's answers with pocketsphinx's own ARPA builder (`python -m pocketsphinx.lm`), with
which clean answers and their codec round trips score ~0.2-0.4: the ceilings to read the agent's
figure against. The in-domain model is cached on disk under the SHA-256 of its sentences
(`domain_language_model`): building it takes seconds for the shipped answers and grows with the
corpus (~90 s measured on a richer one), and every evaluation and playground start would repeat it.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from collections.abc import Iterable
from math import gcd
from pathlib import Path

import jiwer
import numpy as np
from pocketsphinx import Decoder
from pocketsphinx.lm import ArpaBoLM
from scipy.signal import resample_poly

from model.cache import cache_root
from model.metrics.activity import true_runs
from model.metrics.exchange import Exchange

RECOGNIZER_RATE = 16_000  # the shipped acoustic model's sample rate
SPEECH_PAD_SECONDS = 0.3  # kept around the agent's speech: the recognizer needs some silence at the edges


def normalise_text(text: str) -> str:
    """Lower case, punctuation and extra spaces gone, as both references and transcripts are scored:
    "Two plus two is four." -> "two plus two is four"."""
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def build_language_model(sentences: Iterable[str], path: Path) -> Path:
    """Write an ARPA trigram model of `sentences` (each with sentence boundaries) to `path`."""
    lines = [normalise_text(s) for s in sentences]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError("an in-domain language model needs at least one non-empty sentence")
    model = ArpaBoLM(text="\n".join(lines), add_start=True)
    model.compute()
    model.write_file(str(path))
    return path


def language_model_cache() -> Path:
    """Where built language models are kept: `model.cache.cache_root()`/pocketsphinx."""
    return cache_root() / "pocketsphinx"


def domain_language_model(sentences: Iterable[str], cache_dir: Path | None = None) -> Path:
    """The ARPA model of `sentences`, built once per distinct set of (normalised) sentences and kept
    in `cache_dir` (default `language_model_cache()`) as domain-<sha256 of the sentences>.arpa."""
    lines = [normalise_text(s) for s in sentences]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    directory = cache_dir or language_model_cache()
    path = directory / f"domain-{digest[:32]}.arpa"
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:  # a complete file or none, even with racing builders
            built = build_language_model(lines, Path(tmp) / path.name)
            os.replace(built, path)
    return path


class Recognizer:
    """pocketsphinx with its general language model (``sentences=None``) or an in-domain model
    built from ``sentences`` (cached on disk, see `domain_language_model`). Not thread-safe: one per thread."""

    def __init__(self, sentences: Iterable[str] | None = None, cache_dir: Path | None = None) -> None:
        options = {"samprate": RECOGNIZER_RATE, "loglevel": "FATAL"}
        self.kind = "general" if sentences is None else "domain"
        if sentences is not None:
            options["lm"] = str(domain_language_model(sentences, cache_dir))
        self.decoder = Decoder(**options)

    def transcribe(self, wave: np.ndarray, sample_rate: int) -> str:
        """The words heard in a mono float wave, normalised (see `normalise_text`)."""
        wave = np.asarray(wave, dtype=np.float64)
        if wave.ndim != 1:
            raise ValueError(f"wave must be mono (S,), got shape {wave.shape}")
        if sample_rate != RECOGNIZER_RATE:
            g = gcd(RECOGNIZER_RATE, sample_rate)
            wave = resample_poly(wave, RECOGNIZER_RATE // g, sample_rate // g)
        pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        return normalise_text(hypothesis.hypstr) if hypothesis is not None else ""


def word_error_rate(references: str | list[str], hypotheses: str | list[str]) -> float:
    """(substitutions + deletions + insertions) / reference words, pooled over pairs: 0.0 is every
    word right, 1.0 as many errors as words (silence scores exactly 1.0); insertions can push it
    above 1."""
    references = [references] if isinstance(references, str) else list(references)
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    references = [normalise_text(r) for r in references]
    if not references or not all(references):
        raise ValueError("every reference needs at least one word")
    return float(jiwer.wer(references, [normalise_text(h) for h in hypotheses]))


def intelligibility(exchange: Exchange, recognizer: Recognizer) -> tuple[float, str]:
    """(WER, transcript) of the agent's channel against the exchange's expected answer (see
    `word_error_rate`: 0.0 perfect, 1.0 for silence); WER is NaN when no answer is known.

    Only the stretch from the agent's first to its last speech frame (padded by
    SPEECH_PAD_SECONDS) is heard: seconds of digital silence around it cost the recognizer
    words (measured on corpus answers) and time."""
    runs = true_runs(exchange.agent_activity)
    transcript = ""
    if runs:
        pad = int(SPEECH_PAD_SECONDS * exchange.fps)
        first, end = max(0, runs[0][0] - pad), runs[-1][1] + pad
        n = exchange.samples_per_frame
        transcript = recognizer.transcribe(exchange.agent_wave[first * n: end * n], exchange.sample_rate)
    if not exchange.answer:
        return math.nan, transcript
    return word_error_rate(exchange.answer, transcript), transcript
