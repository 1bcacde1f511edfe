"""The synthetic dialogue generator: the motion is tied to the audio the way DESIGN.md section 5 asks."""

import math

import pytest
import torch

from model.data.dialogue import (
    GREETINGS,
    HELDOUT_SEED,
    QA_PAIRS,
    REFUSALS,
    DialogueConfig,
    corpus_answers,
    generate_clip,
    heldout_seeds,
)
from model.data.store import CorpusError, read_corpus, read_manifest, write_corpus
from model.metrics import exchange_from_clip
from model.metrics.manipulation import grasp_success, hand_positions, unrequested_reach
from model.motion import IDENTITIES, POSE_DIM, SKELETON, rotation_6d_to_matrix, split_pose
from model.render.scene import carried_positions

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def clips(default_codec):
    return [generate_clip(seed, default_codec) for seed in SEEDS]


def _pitch(poses: torch.Tensor, joint: str) -> torch.Tensor:
    """Rotation of `joint` about its x axis (T,) in radians, read back from the 6D pose."""
    matrix = rotation_6d_to_matrix(split_pose(poses)[1][:, SKELETON.index(joint)])  # (T, 3, 3)
    return torch.atan2(matrix[:, 2, 1], matrix[:, 1, 1])


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_a_clip_puts_audio_codes_and_poses_on_one_timeline(clips, default_codec):
    config = DialogueConfig()
    for clip in clips:
        t = clip.num_frames
        assert clip.poses.shape == (t, POSE_DIM)
        assert clip.human_wave.shape == clip.agent_wave.shape == (t * config.sample_rate // config.fps,)
        assert clip.human_codes.shape == clip.agent_codes.shape == (default_codec.num_codebooks, 4 * t)
        assert 0 <= clip.human_span[0] < clip.human_span[1] <= clip.agent_span[0] < clip.agent_span[1] < t
        assert clip.identity in range(len(IDENTITIES)) and clip.prompt and clip.question.strip()


def test_jaw_opening_follows_the_agents_own_speech_energy(clips):
    for clip in clips:
        jaw = _pitch(clip.poses, "jaw")
        assert _correlation(jaw, clip.agent_loudness) > 0.5
        first, end = clip.agent_span
        assert jaw[first:end].max() > 0.25  # a clearly open mouth while it talks


def test_the_agent_is_silent_and_its_jaw_closed_while_the_human_speaks(clips):
    config = DialogueConfig()
    per_frame = config.sample_rate // config.fps
    for clip in clips:
        first, end = clip.human_span
        assert clip.agent_wave[first * per_frame: end * per_frame].abs().max() == 0
        assert _pitch(clip.poses, "jaw")[first:end].abs().max() < 0.01
        assert clip.human_wave[first * per_frame: end * per_frame].abs().max() > 0.1


def test_the_agent_nods_while_listening_and_stays_near_rest(clips):
    for clip in clips:
        first, end = clip.human_span
        assert _pitch(clip.poses, "head")[first:end].max() > 0.05
        root, _ = split_pose(clip.poses)
        assert root.norm(dim=-1).max() < 0.05  # idle sway, not wandering


def test_clips_are_deterministic_by_seed(clips, default_codec):
    again = generate_clip(SEEDS[0], default_codec)
    first = clips[0]
    for name in ("human_wave", "agent_wave", "human_codes", "agent_codes", "poses"):
        assert torch.equal(getattr(again, name), getattr(first, name)), name
    assert (again.question, again.prompt, again.identity) == (first.question, first.prompt, first.identity)
    assert not all(
        math.isclose(a.num_frames, b.num_frames) and torch.equal(a.poses, b.poses) for a, b in zip(clips, clips[1:]))


def test_the_corpus_holds_the_demo_kinds_and_several_identities():
    assert len(IDENTITIES) >= 4 and len(QA_PAIRS) >= 60 and len(set(QA_PAIRS)) == len(QA_PAIRS)
    assert any("hello" in q.lower() for q, _ in GREETINGS) and any("lock" in q for q, _ in REFUSALS)
    assert all("cannot" in a or "will not" in a for _, a in REFUSALS)  # a risky question gets a safe refusal
    answers = set(corpus_answers())
    assert {answer for _, answer in QA_PAIRS} < answers and "Of course, here is the red cup." in answers
    assert list(heldout_seeds(2)) == [HELDOUT_SEED, HELDOUT_SEED + 1]


def test_an_interrupted_agent_stops_soon_after_the_human_cuts_in(default_codec):
    config = DialogueConfig(interruption_share=1.0, manipulation_share=0.0)
    per_frame = config.sample_rate // config.fps
    clip = generate_clip(5, default_codec, config)
    assert clip.overlap == "interruption"
    cut_in, cut_end = clip.overlap_span
    assert clip.agent_span[0] < cut_in < clip.agent_span[1] <= cut_in + round(0.35 * config.fps) + 1
    assert clip.agent_wave[clip.agent_span[1] * per_frame:].abs().max() == 0  # silent from then on
    assert clip.human_wave[cut_in * per_frame: cut_end * per_frame].abs().max() > 0.1
    assert _pitch(clip.poses, "jaw")[clip.agent_span[1] + 1:].abs().max() < 0.01
    talking_on = generate_clip(5, default_codec, DialogueConfig(backchannel_share=1.0, interruption_share=0.0,
                                                                    manipulation_share=0.0))
    assert talking_on.overlap == "backchannel" and talking_on.agent_span[1] > talking_on.overlap_span[1]


def test_a_corpus_directory_round_trips_and_names_a_missing_or_corrupt_file(default_codec, tmp_path):
    write_corpus(tmp_path, default_codec, train=range(2), heldout=heldout_seeds(1), progress=False,
                 config=DialogueConfig(distractor_share=1.0, manipulation_share=0.0))
    train, heldout = read_corpus(tmp_path), read_corpus(tmp_path, "heldout")
    assert train[0].objects and isinstance(train[0].objects[0].position, tuple)
    assert [c.seed for c in train] == [0, 1] and [c.seed for c in heldout] == [HELDOUT_SEED]
    again = generate_clip(1, default_codec, DialogueConfig(distractor_share=1.0, manipulation_share=0.0))
    assert train[1].objects == again.objects
    assert torch.equal(train[1].agent_codes, again.agent_codes) and train[1].agent_span == again.agent_span
    assert train[1].question == again.question and train[1].overlap_span == again.overlap_span
    with pytest.raises(ValueError, match="both"):
        write_corpus(tmp_path / "bad", default_codec, train=range(2), heldout=range(1, 2), progress=False)

    clip = tmp_path / "clips" / "1.safetensors"
    data = clip.read_bytes()
    clip.write_bytes(data[:-8] + bytes(8))
    with pytest.raises(CorpusError, match=r"clips/1\.safetensors is corrupt"):
        read_corpus(tmp_path)
    clip.unlink()
    with pytest.raises(CorpusError, match=r"clips/1\.safetensors is missing"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CorpusError, match="manifest.json is corrupt"):
        read_corpus(tmp_path)


def test_asked_for_an_object_the_agent_reaches_grasps_and_carries_it_and_otherwise_does_not(default_codec):
    """Scored by model.metrics.manipulation on the corpus clips themselves (the ceiling)."""
    asked = generate_clip(0, default_codec, DialogueConfig(manipulation_share=1.0))
    assert asked.kind == "manipulation" and asked.requested == 0 and "pick up" in asked.prompt
    assert grasp_success(exchange_from_clip(asked)) == 1.0
    carried = carried_positions(asked.poses, IDENTITIES[asked.identity], asked.objects, 24)  # (T, 1, 3)
    start, end = asked.objects[0].position, carried[-1, 0]
    assert tuple(carried[0, 0]) == pytest.approx(start) and end[1] > start[1] + 0.1  # lifted from its place
    hands = hand_positions(asked.poses.numpy(), asked.identity)[-1]  # (2, 3): it stays in the hand
    assert min(float(((hand - end) ** 2).sum() ** 0.5) for hand in hands) < 0.15
    assert (carried[: asked.agent_span[0], 0] == carried[0, 0]).all()  # nothing moves before the reach

    not_asked = generate_clip(1, default_codec, DialogueConfig(manipulation_share=0.0, distractor_share=1.0))
    assert not_asked.objects and not_asked.requested is None
    assert unrequested_reach(exchange_from_clip(not_asked)) == 0.0
    still = carried_positions(not_asked.poses, IDENTITIES[not_asked.identity], not_asked.objects, 24)
    assert torch.allclose(torch.from_numpy(still), torch.tensor(not_asked.objects[0].position).expand_as(torch.from_numpy(still)))
