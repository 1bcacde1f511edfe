"""Simulated annotators: judge a pair of rollouts by a hidden utility over behaviour metrics.

Why this exists: a reward model (or a PPO run, or the whole site) can only be checked against a
truth, and people do not publish theirs. Simulated annotators do: each dimension has a hidden
`Utility`, a signed weighted sum of `model.metrics.behaviour_metrics` entries, and an annotator
prefers the left clip with the Bradley-Terry probability

    P(left) = sigmoid((u(left) - u(right)) / temperature + bias)

where `temperature` (in utility units) is their noise and `bias` (logits) their lean to the left
clip: 0 for most, `position_bias` for a `biased_share` of the pool. A pair whose utilities differ
by at most `tie_margin` is a tie; a dimension none of whose metrics applies to both clips (NaN,
see model.metrics.suite) is "na". Each dimension and the overall verdict draw their own noise.

    simulator = SimulatedAnnotators(SimulatorConfig(
        dimensions={"listening": Utility({"turn/listening": 1.0})},
        overall=Utility({"turn/listening": 1.0, "turn/latency_s": -0.2}), temperature=0.05))
    judgement = simulator.judge(left_metrics, right_metrics, rng)  # rng: numpy Generator
    judgement.overall                   # "a" (left), "b" (right) or "tie"
    judgement.as_manifest()             # labels, overall, strength, confidence, annotator
    simulator.self_agreement(pairs)     # {"overall": 0.83, "listening": 0.91}: the ceiling

The simulator never sees clips, only metric dicts, so the same pool judges rollouts in a test,
PPO's samples, or clips fetched through the site. `self_agreement` is the chance that two
independent judgements of the same pair agree, computed exactly from the probabilities above; no
model trained on the simulator's labels can expect to agree with them more often than
`truth_agreement` (the noise-free utility's agreement with them), and self-agreement is the
floor of that ceiling (they are equal without noise).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from model.metrics import METRICS

OVERALL = "overall"
# Metrics that exist only when score_exchange is given a recognizer / a motion reference.
_OPTIONAL_METRIC = re.compile(r"^(intelligibility/wer_[a-z0-9_]+|motion/frechet)$")

Metrics = Mapping[str, float]


@dataclass(frozen=True)
class Utility:
    """A hidden utility: sum of weight * metric over the metrics applying to both clips.

    Weights are signed: positive where more is better ("turn/listening"), negative where less is
    ("turn/latency_s", "intelligibility/wer_domain"). Names are model.metrics.suite's.
    """

    weights: Mapping[str, float]

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError("a utility needs at least one weighted metric")
        for name, weight in self.weights.items():
            if name not in METRICS and not _OPTIONAL_METRIC.match(name):
                raise ValueError(f"unknown behaviour metric {name!r}; known: {sorted(METRICS)}, "
                                 "intelligibility/wer_<kind>, motion/frechet")
            if not math.isfinite(weight) or weight == 0:
                raise ValueError(f"the weight of {name!r} must be a finite non-zero number, got {weight}")
        object.__setattr__(self, "weights", dict(self.weights))

    def gap(self, left: Metrics, right: Metrics) -> float:
        """u(left) - u(right) over the metrics both clips have a value for; NaN when none applies."""
        total, applies = 0.0, False
        for name, weight in self.weights.items():
            a, b = left.get(name, math.nan), right.get(name, math.nan)
            if math.isfinite(a) and math.isfinite(b):
                total += weight * (a - b)
                applies = True
        return total if applies else math.nan

    def __call__(self, metrics: Metrics) -> float:
        """u(metrics), the metrics that are NaN left out; NaN when none applies."""
        values = [w * metrics.get(n, math.nan) for n, w in self.weights.items()]
        values = [v for v in values if math.isfinite(v)]
        return float(sum(values)) if values else math.nan


@dataclass(frozen=True)
class SimulatorConfig:
    """A pool of simulated annotators: their hidden utilities, their noise and their position bias."""

    dimensions: Mapping[str, Utility]  # dimension name -> its hidden utility; others are "na"
    overall: Utility | None = None  # None: the sum of the dimensions' weights
    temperature: float = 0.1  # Bradley-Terry noise in utility units: a gap of one temperature is P = 0.73
    annotators: int = 10  # pool size; each judgement is made by one of them, drawn uniformly
    biased_share: float = 0.0  # share of the pool leaning to the left clip (people do: primacy)
    position_bias: float = 1.0  # a biased annotator's lean, logits: 1.0 turns an even pair into P(left) = 0.73
    tie_margin: float = 0.0  # |gap| <= margin is a tie; 0: only exactly equal behaviour ties
    annotator_ids: Sequence[int] = field(default=())  # ids reported in judgements; default 1..annotators

    def __post_init__(self) -> None:
        if not self.dimensions:
            raise ValueError("a simulator needs at least one dimension with a utility")
        if OVERALL in self.dimensions:
            raise ValueError(f"{OVERALL!r} is the overall verdict, not a dimension; pass it as overall=")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.annotators < 1:
            raise ValueError(f"annotators must be >= 1, got {self.annotators}")
        if not 0 <= self.biased_share <= 1:
            raise ValueError(f"biased_share must lie in [0, 1], got {self.biased_share}")
        if not math.isfinite(self.position_bias):
            raise ValueError(f"position_bias must be finite, got {self.position_bias}")
        if not (math.isfinite(self.tie_margin) and self.tie_margin >= 0):
            raise ValueError(f"tie_margin must be >= 0, got {self.tie_margin}")
        if self.annotator_ids and len(self.annotator_ids) != self.annotators:
            raise ValueError(f"annotator_ids names {len(self.annotator_ids)} annotators, the pool has {self.annotators}")
        if self.overall is None:
            weights: dict[str, float] = {}
            for utility in self.dimensions.values():
                for name, weight in utility.weights.items():
                    weights[name] = weights.get(name, 0.0) + weight
            object.__setattr__(self, "overall", Utility({n: w for n, w in weights.items() if w != 0}))
        object.__setattr__(self, "dimensions", dict(self.dimensions))

    @property
    def utilities(self) -> dict[str, Utility]:
        """The overall verdict's utility first, then each dimension's."""
        return {OVERALL: self.overall, **self.dimensions}

    @property
    def biases(self) -> np.ndarray:
        """(annotators,) each annotator's lean to the left clip in logits; the biased ones come first."""
        biased = int(round(self.biased_share * self.annotators))
        return np.array([self.position_bias] * biased + [0.0] * (self.annotators - biased))


@dataclass(frozen=True)
class Judgement:
    """One simulated comparison of a pair as shown: "a" is the left clip, "b" the right.

    `labels` has every dimension of the simulator ("a", "b", "tie" or "na"); `p_left` is the
    probability with which this annotator would have preferred the left clip overall.
    """

    annotator: int
    overall: str
    labels: dict[str, str]
    strength: int  # 1 slight, 2 clear, 3 much (a tie is 1, as the site records it)
    confidence: int  # 1..5
    p_left: float

    def as_manifest(self, dimensions: Sequence[str] = ()) -> dict:
        """The snapshot manifest's judgement fields; `dimensions` the simulator does not judge are "na"."""
        labels = {name: "na" for name in dimensions}
        labels.update(self.labels)
        return {"annotator": self.annotator, "overall": self.overall, "labels": labels,
                "strength": self.strength, "confidence": self.confidence}


class SimulatedAnnotators:
    """Judges pairs of metric dicts (see the module docstring); stateless: randomness comes from the caller."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.ids = list(config.annotator_ids) or list(range(1, config.annotators + 1))
        self._biases = config.biases

    def judge(self, left: Metrics, right: Metrics, rng: np.random.Generator, annotator: int | None = None
              ) -> Judgement:
        """One annotator's judgement of (left, right); `annotator` indexes the pool (default: drawn)."""
        index = int(rng.integers(self.config.annotators)) if annotator is None else annotator
        if not 0 <= index < self.config.annotators:
            raise ValueError(f"annotator index {index} is outside the pool of {self.config.annotators}")
        bias = self._biases[index]
        verdicts, p_overall, gap_overall = {}, 0.5, 0.0
        for name, utility in self.config.utilities.items():
            gap = utility.gap(left, right)
            if math.isnan(gap):
                verdicts[name] = "na"
            elif abs(gap) <= self.config.tie_margin:
                verdicts[name] = "tie"
            else:
                p = _sigmoid(gap / self.config.temperature + bias)
                verdicts[name] = "a" if rng.random() < p else "b"
                if name == OVERALL:
                    p_overall, gap_overall = p, gap
        overall = verdicts.pop(OVERALL)
        if overall == "na":
            # Nothing the overall utility reads applies to this pair: the site has no "na" overall.
            overall = "tie"
        strength = 1 if overall == "tie" else 1 + int(abs(gap_overall) > self.config.temperature) \
            + int(abs(gap_overall) > 3 * self.config.temperature)
        confidence = 1 + min(4, int(abs(p_overall - 0.5) * 10))
        return Judgement(annotator=self.ids[index], overall=overall, labels=verdicts, strength=strength,
                         confidence=confidence, p_left=p_overall)

    def left_probabilities(self, left: Metrics, right: Metrics) -> dict[str, np.ndarray | str]:
        """Per utility (overall first): (annotators,) P(left) of each annotator, or "tie" / "na"."""
        out: dict[str, np.ndarray | str] = {}
        for name, utility in self.config.utilities.items():
            gap = utility.gap(left, right)
            if math.isnan(gap):
                out[name] = "na"
            elif abs(gap) <= self.config.tie_margin:
                out[name] = "tie"
            else:
                out[name] = _sigmoid_array(gap / self.config.temperature + self._biases)
        return out

    def self_agreement(self, pairs: Sequence[tuple[Metrics, Metrics]], same_annotator: bool = False
                       ) -> dict[str, float]:
        """Expected share of pairs on which two independent judgements agree, per utility (overall first).

        Two judgements by annotators drawn independently (`same_annotator`: one annotator judging
        twice). Ties agree with certainty; pairs a utility does not apply to are left out (NaN when
        none applies).
        """
        return self._expected(pairs, lambda p: (p.mean() ** 2 + (1 - p.mean()) ** 2) if not same_annotator
                              else float((p ** 2 + (1 - p) ** 2).mean()))

    def truth_agreement(self, pairs: Sequence[tuple[Metrics, Metrics]]) -> dict[str, float]:
        """Expected share of judgements that side with the higher hidden utility, per utility.

        This is what a model that knows the utility exactly scores against the simulator's labels:
        the accuracy ceiling of a reward model trained and tested on them (the Bayes-optimal
        prediction when no annotator leans; with a leaning share it is still the truth's score).
        """
        def agreement(p: np.ndarray, gap: float) -> float:
            return float(p.mean() if gap > 0 else 1 - p.mean())

        return self._expected(pairs, agreement, with_gap=True)

    def _expected(self, pairs, per_pair, with_gap: bool = False) -> dict[str, float]:
        sums = {name: [0.0, 0] for name in self.config.utilities}
        for left, right in pairs:
            for name, p in self.left_probabilities(left, right).items():
                if isinstance(p, str):
                    if p == "tie":
                        sums[name][0] += 1.0
                        sums[name][1] += 1
                    continue
                gap = self.config.utilities[name].gap(left, right)
                sums[name][0] += per_pair(p, gap) if with_gap else per_pair(p)
                sums[name][1] += 1
        return {name: (total / count if count else math.nan) for name, (total, count) in sums.items()}


def _sigmoid(x: float) -> float:
    return float(_sigmoid_array(np.asarray(x)))


def _sigmoid_array(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))
