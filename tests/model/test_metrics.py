"""Each behaviour metric on hand-made exchanges with a known answer, and on corpus clips (the ceiling)."""

import math

import numpy as np
import pytest

from model.data.dialogue import QA_PAIRS, generate_clip
from model.data.speech import synthesize
from model.metrics import (
    Exchange,
    MotionStatistics,
    Recognizer,
    behaviour_metrics,
    exchange_from_clip,
    frechet_distance,
    jaw_opening,
    lip_sync,
    listening,
    response_rate,
    talked_over,
    turn_latency,
    voice_activity,
    word_error_rate,
)
from model.metrics.manipulation import grasp_success, hand_positions, requested_object, unrequested_reach
from model.motion import axis_angle_to_matrix, join_pose, matrix_to_rotation_6d, rest_pose
from model.render import SceneObject

RATE, FPS = 24_000, 24


def _tone(seconds: float, level: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 150 * t)).astype(np.float32)


def _exchange(agent_wave: np.ndarray, human_wave: np.ndarray, poses=None, **kwargs) -> Exchange:
    frames = len(human_wave) // (RATE // FPS)
    poses = np.tile(rest_pose().numpy(), (frames, 1)) if poses is None else poses
    return Exchange(human_wave=human_wave, agent_wave=agent_wave, poses=poses, fps=FPS, sample_rate=RATE,
                    identity=0, **kwargs)


@pytest.fixture(scope="module")
def human_turn() -> np.ndarray:
    """1 s of silence, 2 s of the human's tone, then 3 s of silence."""
    return np.concatenate([np.zeros(RATE, np.float32), _tone(2.0), np.zeros(3 * RATE, np.float32)])


def test_voice_activity_fills_word_gaps_and_keeps_a_syllable():
    db = np.array([-20, -20, -60, -20, -60, -60, -60, -20, -60, -60])
    assert voice_activity(db, fps=10).astype(int).tolist() == [1, 1, 1, 1, 0, 0, 0, 1, 0, 0]


def test_a_silent_agent_has_response_rate_0_and_listens_fully(human_turn):
    silent = _exchange(np.zeros_like(human_turn), human_turn)
    assert silent.human_span == (24, 72)
    assert response_rate(silent) == 0.0
    assert listening(silent) == 1.0
    assert talked_over(silent) == 0.0
    assert math.isnan(turn_latency(silent))


def test_an_agent_that_copies_the_human_has_listening_0(human_turn):
    echo = _exchange(human_turn.copy(), human_turn)
    assert listening(echo) == 0.0
    assert talked_over(echo) == 1.0
    assert math.isnan(turn_latency(echo))  # it stops with the human: it never takes the turn


def test_an_agent_answering_half_a_second_after_the_human(human_turn):
    agent = np.zeros_like(human_turn)
    agent[int(3.5 * RATE): int(5 * RATE)] = _tone(1.5)
    answer = _exchange(agent, human_turn)
    assert response_rate(answer) == 1.0
    assert listening(answer) == 1.0
    assert turn_latency(answer) == pytest.approx(0.5)
    late = agent.copy()
    late[:] = 0
    late[int(5.2 * RATE):] = _tone(0.8)
    assert response_rate(_exchange(late, human_turn)) == 0.0  # 2.2 s after the human stopped


def _jaw_poses(angles: np.ndarray) -> np.ndarray:
    rotations = np.zeros((len(angles), 22, 3), np.float32)
    rotations[:, 5, 0] = angles  # jaw
    import torch
    rot6d = matrix_to_rotation_6d(axis_angle_to_matrix(torch.from_numpy(rotations)))
    return join_pose(torch.zeros(len(angles), 3), rot6d).numpy()


def test_a_jaw_that_follows_loudness_exactly_has_lip_sync_1(human_turn):
    rng = np.random.default_rng(0)
    frames = len(human_turn) // 1000
    levels = rng.uniform(0.01, 0.3, frames).astype(np.float32)  # -40 .. -10 dB: above the activity floor
    agent = np.repeat(levels, 1000) * np.sign(np.sin(np.arange(frames * 1000)))
    exchange = _exchange(agent.astype(np.float32), human_turn)
    db = exchange.agent_loudness_db
    poses = _jaw_poses((0.01 * (db + 45)).astype(np.float32))
    assert jaw_opening(poses) == pytest.approx(0.01 * (db + 45), abs=1e-5)
    assert lip_sync(_exchange(agent, human_turn, poses)) == pytest.approx(1.0, abs=1e-4)
    shuffled = _jaw_poses(rng.permutation(0.01 * (db + 45)).astype(np.float32))
    assert abs(lip_sync(_exchange(agent, human_turn, shuffled))) < 0.3
    assert math.isnan(lip_sync(_exchange(np.zeros_like(agent), human_turn, poses)))


def test_manipulation_holding_the_asked_object_and_not_reaching_otherwise(human_turn):
    frames = len(human_turn) // 1000
    rest = np.tile(rest_pose().numpy(), (frames, 1))
    hand = hand_positions(rest[:1], 0)[0, 1]  # the right hand at rest
    cup = SceneObject("cup", tuple(float(x) for x in hand))
    far = SceneObject("cup", (float(hand[0]), float(hand[1]), float(hand[2]) + 0.5))
    assert requested_object("pick up the cup", [cup]) == 0
    assert requested_object("answer the question", [cup]) is None
    assert requested_object("pick up the ball", [cup]) is None
    held = _exchange(np.zeros_like(human_turn), human_turn, rest, prompt="pick up the cup", objects=(cup,), requested=0)
    assert grasp_success(held) == 1.0 and math.isnan(unrequested_reach(held))
    missed = _exchange(np.zeros_like(human_turn), human_turn, rest, prompt="pick up the cup", objects=(far,), requested=0)
    assert grasp_success(missed) == 0.0
    calm = _exchange(np.zeros_like(human_turn), human_turn, rest)
    assert unrequested_reach(calm) == 0.0 and math.isnan(grasp_success(calm))


def test_voice_distance_grades_the_pitch_error_past_the_octave_where_consistency_stops():
    from model.metrics import voice_consistency, voice_distance_semitones
    from model.metrics.identity import identity_pitch

    def sung(semitones: float) -> Exchange:  # identity 1's voice pitch moved by `semitones`, 2 s long
        t = np.arange(2 * RATE) / RATE
        wave = (0.1 * np.sin(2 * np.pi * identity_pitch(1) * 2 ** (semitones / 12) * t)).astype(np.float32)
        return Exchange(human_wave=np.zeros_like(wave), agent_wave=wave, poses=np.tile(rest_pose().numpy(), (48, 1)),
                        fps=FPS, sample_rate=RATE, identity=1)

    assert voice_distance_semitones(sung(-3)) == pytest.approx(3, abs=0.2)
    assert voice_consistency(sung(-3)) == pytest.approx(0.75, abs=0.02)
    far, farther = voice_distance_semitones(sung(13)), voice_distance_semitones(sung(20))
    assert far == pytest.approx(13, abs=0.2) and farther == pytest.approx(20, abs=0.2)
    assert voice_consistency(sung(13)) == voice_consistency(sung(20)) == 0.0  # the cliff the distance has not
    silent = sung(0)
    silent.agent_wave[:] = 0
    assert math.isnan(voice_distance_semitones(silent))


def test_word_error_rate_counts_errors_per_reference_word():
    assert word_error_rate("Two plus two is four.", "two plus two is four") == 0.0
    assert word_error_rate("two plus two is four", "") == 1.0
    assert word_error_rate("two plus two is four", "two plus three is four") == pytest.approx(0.2)


def test_frechet_distance_is_zero_for_the_same_motion_and_grows_with_noise(default_codec):
    poses = [generate_clip(seed, default_codec).poses.numpy() for seed in (2000, 2001)]
    same = MotionStatistics.of(poses, FPS)
    assert frechet_distance(same, same) == pytest.approx(0.0, abs=1e-6)
    noisy = [p + np.random.default_rng(0).normal(0, 0.05, p.shape).astype(np.float32) for p in poses]
    assert frechet_distance(MotionStatistics.of(noisy, FPS), same) > 10 * frechet_distance(
        MotionStatistics.of(poses[:1], FPS), same)


@pytest.mark.slow
def test_corpus_clips_score_the_ceiling(default_codec):
    recognizers = {"domain": Recognizer([answer for _, answer in QA_PAIRS])}
    clip = generate_clip(3000, default_codec)
    metrics = behaviour_metrics(exchange_from_clip(clip, default_codec), recognizers)
    assert metrics["turn/response_rate"] == 1.0 and metrics["turn/listening"] == 1.0
    assert 0.2 <= metrics["turn/latency_s"] <= 1.0
    assert metrics["lip_sync/correlation"] > 0.9
    assert metrics["identity/body"] == pytest.approx(1.0, abs=0.02)
    assert metrics["identity/voice"] > 0.6
    assert metrics["manipulation/unrequested_reach"] == 0.0
    assert metrics["intelligibility/wer_domain"] < 1.0
    wave = synthesize("Two plus two is four.", RATE).numpy()
    assert recognizers["domain"].transcribe(wave, RATE) == "two plus two is four"


def test_an_exchange_from_a_real_responder_sample(default_codec):
    from model.agent import SamplingParams
    from model.metrics import exchange_from_response
    from model.respond import Responder, ResponseConfig
    from model.text import load_text_encoder
    from model.zoo import load_agent

    responder = Responder(load_agent("default"), default_codec, load_text_encoder("default"),
                          ResponseConfig(response_seconds=0.5, width=64, height=64))
    human = synthesize("Hello.", RATE).numpy()
    response = responder.respond(human, "answer the question", 0, [], SamplingParams(seed=0))
    exchange = exchange_from_response(response, default_codec, human, prompt="answer the question", identity=0)
    assert exchange.num_frames == len(response.frames)
    assert exchange.human_span[1] > exchange.human_span[0]
    assert set(behaviour_metrics(exchange)) >= {"turn/listening", "lip_sync/correlation", "identity/body"}


def test_the_in_domain_language_model_is_built_once_per_set_of_sentences(tmp_path):
    from model.metrics.intelligibility import domain_language_model

    first = domain_language_model(["Two plus two is four.", "The sky is clear."], tmp_path)
    stamp = first.stat().st_mtime_ns
    again = domain_language_model(["two plus two is four", "the sky is clear"], tmp_path)  # same words
    assert again == first and again.stat().st_mtime_ns == stamp
    assert "two plus two" in first.read_text() and "sky is clear" in first.read_text()  # its trigrams
    other = domain_language_model(["The station is two streets down."], tmp_path)
    assert other != first and sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])
