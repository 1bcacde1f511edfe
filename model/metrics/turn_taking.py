"""Turn-taking: does the agent answer, does it let the human finish, how quickly does it take the turn.

Why this exists: an agent that is silent after a question, or talks over it, is what annotators
complained about first (issue 11). These functions read only the two channels' voice activity
(model.metrics.activity) against the human's voiced span, so they apply to any exchange.
Each returns NaN when the exchange has no human speech to react to.
"""

from __future__ import annotations

import math

import numpy as np

from model.metrics.activity import true_runs
from model.metrics.exchange import Exchange

RESPONSE_WINDOW_SECONDS = 2.0  # issue 11: the agent speaks within 2 s after the human stops
TALK_OVER_SECONDS = 0.25  # agent speech during the human's words for longer than a short word is talking over


def response_rate(exchange: Exchange, window_seconds: float = RESPONSE_WINDOW_SECONDS) -> float:
    """1.0 when the agent speaks in the ``window_seconds`` after the human's last voiced frame, 0.0
    when it stays silent there (speech that began during the turn and goes on counts: talking over
    is `talked_over`'s business). Averaged over exchanges it is the share of turns answered."""
    first, end = exchange.human_span
    if end == first:
        return math.nan
    window = exchange.agent_activity[end: end + int(round(window_seconds * exchange.fps))]
    return float(window.any())


def listening(exchange: Exchange) -> float:
    """Share of the human's speech frames during which the agent is silent: 1.0 lets the human
    speak undisturbed, 0.0 speaks through every one of the human's words (an echo of the human)."""
    first, end = exchange.human_span
    human = exchange.human_activity
    human[:first] = False
    human[end:] = False
    if not human.any():
        return math.nan
    return float((~exchange.agent_activity[human]).mean())


def talked_over(exchange: Exchange, min_seconds: float = TALK_OVER_SECONDS) -> float:
    """1.0 when the agent speaks during at least ``min_seconds`` of the human's speech frames, else
    0.0. Averaged over exchanges it is the share of turns the agent talked over."""
    listened = listening(exchange)
    if math.isnan(listened):
        return math.nan
    first, end = exchange.human_span
    human = exchange.human_activity[first:end]
    overlap = (human & exchange.agent_activity[first:end]).sum()
    return float(overlap >= min_seconds * exchange.fps)


def turn_latency(exchange: Exchange) -> float:
    """Seconds from the human's last voiced frame to the start of the agent's next speech: 0 is an
    instant answer (people take ~0.2-1 s); negative when the agent was already speaking as the
    human stopped (an overlap); NaN when the agent never speaks after the human stops."""
    first, end = exchange.human_span
    if end == first:
        return math.nan
    for onset, stop in true_runs(exchange.agent_activity):
        if stop > end:
            return (onset - end) / exchange.fps
    return math.nan


def latency_summary(latencies: list[float] | np.ndarray) -> dict[str, float]:
    """The distribution of turn latencies over exchanges (NaNs, turns never answered, left out):
    count, median and the 10th / 90th percentiles in seconds (NaN when there are none)."""
    values = np.asarray([x for x in latencies if not math.isnan(x)], dtype=np.float64)
    if values.size == 0:
        return {"count": 0.0, "median": math.nan, "p10": math.nan, "p90": math.nan}
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return {"count": float(values.size), "median": float(median), "p10": float(p10), "p90": float(p90)}
