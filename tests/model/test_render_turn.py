"""python -m model.render_turn on a tiny agent built here: the MP4 it writes holds a video and an
audio stream as long as the turn, the render the responder made (the scene's object included) and
the human's question on the sound track; a bad checkpoint or turn is a usage error."""

from __future__ import annotations

import av
import numpy as np
import pytest

from model.evaluate import HELDOUT_SEED
from model.media import decode_audio, decode_video
from model.render_turn import main

TURN = 9  # a short manipulation turn: the human asks for the cup standing in the scene
RESPONSE_SECONDS = 0.25
WIDTH, HEIGHT = 160, 96


@pytest.fixture(scope="module")
def checkpoint(micro_checkpoint):
    return micro_checkpoint


@pytest.mark.slow
def test_the_mp4_shows_the_agent_and_plays_the_question(checkpoint, tmp_path, capsys):
    out = tmp_path / "turn.mp4"
    rendered = main([str(checkpoint), "--out", str(out), "--turn", str(TURN), "--response-seconds",
                     str(RESPONSE_SECONDS), "--width", str(WIDTH), "--height", str(HEIGHT), "--diffusion-steps", "2"])
    assert f"wrote {out}" in capsys.readouterr().out
    clip, response = rendered.clip, rendered.response
    assert clip.seed == HELDOUT_SEED + TURN and clip.objects
    rate, fps = response.sample_rate, response.fps
    expected_seconds = clip.human_span[1] / fps + RESPONSE_SECONDS  # the turn ends with the question

    with av.open(str(out)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
        assert (container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height) \
            == (WIDTH, HEIGHT)
    frames = decode_video(out, fps, WIDTH, HEIGHT)
    audio = decode_audio(out, rate)
    assert abs(len(frames) / fps - expected_seconds) <= 2 / fps
    assert abs(audio.size / rate - expected_seconds) <= 2 / fps

    # The picture is the responder's render, cup included (H.264 blurs edges a little).
    assert len(frames) == len(response.frames)
    assert np.abs(frames.astype(np.int16) - response.frames.astype(np.int16)).mean() < 6
    colour = np.array(clip.objects[0].colour, dtype=np.int16)
    near = (np.abs(frames[0].astype(np.int16) - colour).max(axis=-1) < 40).sum()
    assert near >= 4, f"the {clip.objects[0].kind} (colour {colour.tolist()}) is not in the first frame"

    # The sound track carries the question where the human speaks, at the responder's mix.
    per_frame = round(rate / fps)
    first, end = clip.human_span
    speech = slice(first * per_frame, end * per_frame)
    rms = float(np.sqrt(np.mean(audio[speech] ** 2)))
    assert rms > 0.02, f"the question is silent in the MP4 (rms {rms:.4f})"
    assert rms == pytest.approx(float(np.sqrt(np.mean(response.audio[speech] ** 2))), rel=0.25)


def test_a_missing_checkpoint_or_a_negative_turn_is_a_usage_error(tmp_path, capsys):
    for argv, message in (([str(tmp_path / "nowhere")], "no agent checkpoint"),
                          (["default", "--turn", "-1"], "held-out turn indices start at 0")):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--out", str(tmp_path / "x.mp4")])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
