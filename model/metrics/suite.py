"""Every behaviour metric of one exchange as a flat dict of floats: what simulated annotators,
the reward model's tests, PPO's checks and model.evaluate read.

Why this exists: one call with stable names, so every consumer means the same thing by
"listening". Names are "family/metric"; each value's meaning (what 0 and 1 are) is the docstring
of the function named beside it in METRICS. NaN means "does not apply to this exchange" (no
human speech, nothing asked for, nothing voiced, no known answer). The intelligibility and motion
Frechet entries are present only when a recognizer / a motion reference is given: building them
costs seconds, so a caller scoring many exchanges builds them once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from model.metrics.exchange import Exchange
from model.metrics.identity import body_consistency, pitch_error_semitones, voice_consistency, voice_distance_semitones
from model.metrics.intelligibility import Recognizer, intelligibility
from model.metrics.lip_sync import lip_sync
from model.metrics.manipulation import grasp_success, unrequested_reach
from model.metrics.motion_quality import MotionStatistics, frechet_distance
from model.metrics.turn_taking import listening, response_rate, talked_over, turn_latency

METRICS: dict[str, Callable[[Exchange], float]] = {
    "turn/response_rate": response_rate,
    "turn/listening": listening,
    "turn/talked_over": talked_over,
    "turn/latency_s": turn_latency,
    "lip_sync/correlation": lip_sync,
    "manipulation/grasp_success": grasp_success,
    "manipulation/unrequested_reach": unrequested_reach,
    "identity/voice": voice_consistency,
    "identity/voice_semitones": pitch_error_semitones,
    "identity/voice_distance": voice_distance_semitones,
    "identity/body": body_consistency,
}


@dataclass
class ExchangeScore:
    """The metrics of one exchange and what the recognizers heard (by recognizer kind)."""

    metrics: dict[str, float]
    transcripts: dict[str, str] = field(default_factory=dict)


def score_exchange(exchange: Exchange, recognizers: Mapping[str, Recognizer] | None = None,
                   motion_reference: MotionStatistics | None = None) -> ExchangeScore:
    """Every metric of `exchange`; "intelligibility/wer_<kind>" per recognizer (by its kind, e.g.
    "domain", "general") and "motion/frechet" against `motion_reference` when given."""
    metrics = {name: float(metric(exchange)) for name, metric in METRICS.items()}
    transcripts = {}
    for kind, recognizer in (recognizers or {}).items():
        metrics[f"intelligibility/wer_{kind}"], transcripts[kind] = intelligibility(exchange, recognizer)
    if motion_reference is not None:
        own = MotionStatistics.of([exchange.poses], exchange.fps)
        metrics["motion/frechet"] = frechet_distance(own, motion_reference)
    return ExchangeScore(metrics=metrics, transcripts=transcripts)


def behaviour_metrics(exchange: Exchange, recognizers: Mapping[str, Recognizer] | None = None,
                      motion_reference: MotionStatistics | None = None) -> dict[str, float]:
    """`score_exchange`'s metrics alone: {"turn/response_rate": 1.0, "turn/listening": 0.97, ...}."""
    return score_exchange(exchange, recognizers, motion_reference).metrics
