"""The Gradio playground driven as a user's script would: `gradio_client` against the app, launched
with `python -m alignment.playground` in its own process on a free port.

Two agents (the shipped default and a checkpoint directory) answer one uploaded turn; their clips'
durations, behaviour metrics and reward scores must equal what `model.evaluate.sample_and_score`
computes on the same seeds. Bad input (an unknown checkpoint, one outside the allowed roots, one of another
configuration, a corrupt upload) must come back as a readable message, and the app keeps serving.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from alignment.reward import RewardModel
from model.agent import SamplingParams
from model.media import decode_audio, probe, write_mp4
from model.respond import ResponseConfig
from model.rollout_store import rollout_from_bytes
from model.zoo import load_agent

REPO = Path(__file__).resolve().parents[2]
MOTION_CLIPS = 1  # one held-out clip as the Frechet reference: the app and the reference below agree on it
RESPONSE_SECONDS = 0.25  # short answers keep two agents' sampling within a minute or two on CI
STARTUP_TIMEOUT = 300
MAX_AGENTS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """An allowed checkpoint root holding a copy of the default agent, a reward model on its backbone,
    and an agent of another configuration (its codebooks do not fit its own weights)."""
    root = tmp_path_factory.mktemp("playground-root")
    agent = load_agent("default")
    agent.save_pretrained(root / "copy")
    torch.manual_seed(0)
    RewardModel.from_agent(agent, dimensions=("listening",)).save_pretrained(root / "reward")
    other = root / "other"
    agent.save_pretrained(other)
    config = json.loads((other / "config.json").read_text())
    config["codebook_size"] = config["codebook_size"] // 2
    (other / "config.json").write_text(json.dumps(config))
    return root


@pytest.fixture(scope="module")
def turn_clip(tmp_path_factory) -> Path:
    """A half-second uploaded turn: a warbling tone (something to listen to) over grey frames."""
    path = tmp_path_factory.mktemp("turn") / "turn.mp4"
    rate, seconds = 24_000, 0.5
    t = np.arange(int(rate * seconds)) / rate
    audio = (0.3 * np.sin(2 * np.pi * (180 + 40 * np.sin(2 * np.pi * 3 * t)) * t)).astype(np.float32)
    write_mp4(path, np.full((12, 64, 64, 3), 128, np.uint8), 24, audio, rate)
    return path


@pytest.fixture(scope="module")
def playground(root, tmp_path_factory):
    """The app in its own process, as `python -m alignment.playground` runs it; yields (client, out_dir)."""
    from gradio_client import Client

    port, out = free_port(), tmp_path_factory.mktemp("playground-out")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(out.parent / "playground.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "alignment.playground", "--port", str(port), "--root", str(root),
                                "--out", str(out), "--motion-reference-clips", str(MOTION_CLIPS)],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the playground exited ({process.returncode}): {(out.parent / 'playground.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the playground did not listen within {STARTUP_TIMEOUT} s")
                time.sleep(1)
        yield Client(url, verbose=False), out, url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def slot(use: bool, checkpoint: str = "default", temperature: float = 1.0, top_k: int = 0, steps: int = 10,
         seed: int = 0) -> list:
    return [use, checkpoint, temperature, temperature, top_k, steps, seed]


def call(client, slots: list[list], clip, reward: str = "", source: str = "clip"):
    from gradio_client import handle_file

    slots = slots + [slot(False)] * (MAX_AGENTS - len(slots))
    args = [v for s in slots for v in s] + [source, handle_file(str(clip)) if clip else None,
                                            "0: held-out corpus clip 1000000", "answer the question", 0,
                                            RESPONSE_SECONDS, reward]
    return client.predict(*args, api_name="/sample")


def reference(checkpoint: str, clip: Path, params: SamplingParams, reward: RewardModel):
    """What model.evaluate computes for the same agent, uploaded turn and seed (its own sample_and_score)."""
    from model.evaluate import Turn, load_kit, sample_and_score

    kit = load_kit(MOTION_CLIPS)
    turn = Turn(human_wave=decode_audio(clip, kit.codec.sample_rate), prompt="answer the question", identity=0)
    sample = sample_and_score(load_agent(checkpoint), turn, params.audio_temperature, params.seed, kit,
                              visual_temperature=params.visual_temperature, top_k=params.top_k,
                              diffusion_steps=params.diffusion_steps,
                              response=ResponseConfig(response_seconds=RESPONSE_SECONDS, width=64, height=64))
    with torch.inference_mode():
        rewards = {k: float(v[0]) for k, v in reward.scores(sample.rollout.to_batch()).items()}
    return sample.response, sample.metrics, rewards


@pytest.mark.slow
def test_two_agents_on_an_uploaded_turn_match_the_evaluation(playground, root, turn_clip):
    client, _, _ = playground
    chosen = [("default", SamplingParams(audio_temperature=0.7, visual_temperature=0.7, seed=3)),
              (str(root / "copy"), SamplingParams(audio_temperature=1.2, visual_temperature=1.2, top_k=50, seed=4))]
    result = call(client, [slot(True, "default", 0.7, seed=3), slot(True, str(root / "copy"), 1.2, top_k=50, seed=4)],
                  turn_clip, reward=str(root / "reward"))
    videos, tables, files = result[:MAX_AGENTS], result[MAX_AGENTS:2 * MAX_AGENTS], result[2 * MAX_AGENTS:]
    assert videos[2] is None and videos[3] is None and tables[2] is None
    reward = RewardModel.from_pretrained(root / "reward")
    for i, (checkpoint, params) in enumerate(chosen):
        expected, metrics, rewards = reference(checkpoint, turn_clip, params, reward)
        table = tables[i]
        assert table["duration_s"] == pytest.approx(expected.duration_seconds)
        assert probe(videos[i]).duration == pytest.approx(expected.duration_seconds, abs=0.05)
        assert set(table["metrics"]) == set(metrics)
        for name, value in metrics.items():
            shown = table["metrics"][name]
            if math.isnan(value):
                assert shown is None, name
            else:
                assert shown == pytest.approx(value, rel=1e-6, abs=1e-9), name
        assert set(table["reward"]) == {"overall", "listening"}
        assert table["reward"] == pytest.approx(rewards, rel=1e-5, abs=1e-6)
        saved = {Path(f).name: Path(f) for f in files[i]}
        assert set(saved) == {"response.mp4", "rollout.safetensors"}
        rollout = rollout_from_bytes(saved["rollout.safetensors"].read_bytes())
        assert torch.equal(rollout.audio_tokens, expected.rollout.audio_tokens)
        assert rollout.params == params
    # Different seeds and temperatures: the two agents' samples differ (the slots are not crossed).
    assert tables[0]["metrics"] != tables[1]["metrics"] or tables[0]["reward"] != tables[1]["reward"]


def app_error(client, *args, **kwargs) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        call(client, *args, **kwargs)
    message = str(caught.value)
    assert "Traceback" not in message
    return message


def test_bad_input_gets_a_readable_message(playground, root, turn_clip, tmp_path):
    client, _, _ = playground
    assert "No agent checkpoint" in app_error(client, [slot(True, str(root / "missing"))], turn_clip)
    assert "not under an allowed checkpoint root" in app_error(client, [slot(True, str(tmp_path))], turn_clip)
    assert "Cannot use the agent checkpoint" in app_error(client, [slot(True, str(root / "other"))], turn_clip)
    assert "not a reward model" in app_error(client, [slot(True)], turn_clip, reward=str(root / "copy"))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    assert "cannot be read" in app_error(client, [slot(True)], corrupt)
    assert "Record or upload a clip" in app_error(client, [slot(True)], None)
    assert "at least one agent" in app_error(client, [slot(False)], turn_clip)
    assert "diffusion_steps" in app_error(client, [slot(True, steps=1)], turn_clip)


def test_the_playground_never_imports_django():
    code = ("import sys, alignment.playground.__main__, alignment.playground.app; "
            "sys.exit('django' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=300).returncode == 0


CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_shows_two_samples_and_their_metrics(playground, turn_clip):
    """A person's path in Debian's Chromium: upload the turn, sample the two default agents, see both
    clips and their metrics; the screenshot is saved as test-artifacts/playground.png."""
    from tests.conftest import require_service

    require_service("browser", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    _, _, url = playground
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(url)
            page.get_by_label("Response seconds").fill(str(RESPONSE_SECONDS))
            page.locator("input[type=file]").first.set_input_files(str(turn_clip))
            page.wait_for_function("document.querySelectorAll('video').length >= 1")  # the turn's preview
            page.get_by_role("button", name="Sample", exact=True).click()
            page.wait_for_function("document.querySelectorAll('#clips video').length == 2", timeout=600_000)
            text = page.inner_text("#clips")
            assert text.count("turn/listening") == 2 and text.count("duration_s") == 2
            page.get_by_role("button", name="Play all together").click()
            page.wait_for_function("[...document.querySelectorAll('#clips video')].every(v => v.currentTime > 0)")
            page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors


def test_registered_variants_come_from_an_exported_list(tmp_path):
    from alignment.playground.app import read_variants, variant_settings

    exported = tmp_path / "variants.json"
    exported.write_text(json.dumps({"count": 1, "results": [
        {"id": 3, "name": "cool", "checkpoint": "default", "audio_temperature": 0.6, "visual_temperature": 0.8,
         "top_k": None, "diffusion_steps": 12}]}))
    variants = {v["name"]: v for v in read_variants(exported)}
    assert variant_settings(variants, "cool") == ["default", 0.6, 0.8, 0, 12]
    exported.write_text(json.dumps([{"name": "no checkpoint"}]))
    with pytest.raises(ValueError, match="'name' and 'checkpoint'"):
        read_variants(exported)
