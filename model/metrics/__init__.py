"""Behaviour metrics of the agent: the project's ground truth (DESIGN.md section 9).

Each metric scores one `Exchange` (a human turn, the agent's voice and motion on the same
timeline) and says in its docstring what 0 and 1 mean; `behaviour_metrics` returns them all as a
dict of floats. Build exchanges with `exchange_from_response` (a model.respond sample),
`exchange_from_rollout` (a stored rollout) or `exchange_from_clip` (a corpus clip: the ceiling).

    exchange = exchange_from_response(response, codec, human_wave, prompt=prompt, identity=0)
    behaviour_metrics(exchange)["turn/listening"]  # 1.0: silent while the human spoke

One module per family: turn_taking (response rate, listening, talking over, latency), lip_sync,
manipulation, identity, intelligibility (pocketsphinx WER), motion_quality (Frechet distance,
diversity); activity is the voice activity detector they share.
"""

from model.metrics.activity import ACTIVITY, ActivityConfig, frame_loudness_db, voice_activity
from model.metrics.exchange import Exchange, exchange_from_clip, exchange_from_response, exchange_from_rollout
from model.metrics.identity import body_consistency, pitch_error_semitones, voice_consistency, voice_distance_semitones
from model.metrics.intelligibility import Recognizer, normalise_text, word_error_rate
from model.metrics.lip_sync import jaw_opening, lip_sync
from model.metrics.manipulation import grasp_success, requested_object, unrequested_reach
from model.metrics.motion_quality import MotionStatistics, diversity, frechet_distance
from model.metrics.suite import METRICS, ExchangeScore, behaviour_metrics, score_exchange
from model.metrics.turn_taking import latency_summary, listening, response_rate, talked_over, turn_latency

__all__ = [
    "ACTIVITY", "METRICS", "ActivityConfig", "Exchange", "ExchangeScore", "MotionStatistics", "Recognizer",
    "behaviour_metrics", "body_consistency", "diversity", "exchange_from_clip", "exchange_from_response",
    "exchange_from_rollout", "frame_loudness_db", "frechet_distance", "grasp_success", "jaw_opening",
    "latency_summary", "lip_sync", "listening", "normalise_text", "pitch_error_semitones", "requested_object",
    "response_rate", "score_exchange", "talked_over", "turn_latency", "unrequested_reach", "voice_activity",
    "voice_consistency", "voice_distance_semitones", "word_error_rate",
]
