"""The learning test: a reward model trained on simulated annotators' preferences learns them.

The shipped default agent answers human turns voiced by espeak-ng (the corpus's questions and
human voices), sampled at different audio temperatures so its listening differs; simulated
annotators judge every pair by ONE behaviour metric, ``turn/listening`` (the share of the human's
speech frames in which the agent is silent), with Bradley-Terry noise. A short CPU run of
``python -m alignment.reward`` (in process, no DeepSpeed) on that snapshot then scores the held-out
rounds. Measured (seed 0, 24 rounds, 14 training / 10 held-out pairs of which 6 decisive, 4
ties): held-out overall accuracy 1.00 against the simulator's labels (eval loss 0.60 from ln 2 =
0.69 after 2 epochs); the simulator's self-agreement on these pairs is 0.966 and its truth
agreement (the ceiling: what a model knowing the metric exactly would score) 0.979. Chance is
0.5; the test asks for 0.75. Rollouts are sampled once per run into the test's tmp dir.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from alignment.reward.__main__ import main
from alignment.simulate import OVERALL, SimulatedAnnotators, SimulatorConfig, Utility
from alignment.snapshot import Snapshot, write_snapshot
from model.agent import SamplingParams
from model.codec import load_codec
from model.data.dialogue import HUMAN_VOICES, QA_PAIRS
from model.data.speech import synthesize
from model.metrics import behaviour_metrics, exchange_from_rollout
from model.rollout_store import rollout_from_bytes, rollout_to_bytes
from model.zoo import DEFAULT_AGENT_DIR, load_agent

FRAMES = 32  # 1.33 s at 24 fps: the human speaks from 0.2 s on, so listening has ~27 frames to count
ROUNDS = 24
TEMPERATURES = (0.3, 1.5)  # audio temperatures of the two variants: a cold agent is a little quieter over the human
# (listening 0.19 vs 0.13, 10 of 24 rounds apart by > 0.05, since temperature keeps the decision to speak)
LEAD_SECONDS = 0.2
SIMULATOR = SimulatorConfig(dimensions={"listening": Utility({"turn/listening": 1.0})}, temperature=0.03,
                            annotators=5)


def human_turn(index: int, sample_rate: int) -> np.ndarray:
    """Turn `index`: a corpus question in a human voice after LEAD_SECONDS of silence, FRAMES long."""
    question = QA_PAIRS[index % len(QA_PAIRS)][0]
    voice = HUMAN_VOICES[(index // len(QA_PAIRS) + index) % len(HUMAN_VOICES)]
    speech = synthesize(question, sample_rate, voice).numpy()
    wave = np.zeros(FRAMES * sample_rate // 24, dtype=np.float32)
    start = int(LEAD_SECONDS * sample_rate)
    n = min(speech.size, wave.size - start)
    wave[start:start + n] = speech[:n]
    return wave


def sample_rounds(cache: Path, rounds: int = ROUNDS) -> list[list[tuple[bytes, dict, float]]]:
    """Per round, (rollout bytes, behaviour metrics, temperature) of each variant; cached under `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    agent, codec = load_agent("default"), load_codec("default")
    r = agent.config.audio_frames_per_video_frame
    out = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one stream samples fastest on one thread (model.bench); on a busy machine, by far
    try:
        for i in range(rounds):
            wave = human_turn(i, codec.sample_rate)
            codes = codec.encode(torch.from_numpy(wave), codec.sample_rate)[:, :FRAMES * r]
            sides = []
            for temperature in TEMPERATURES:
                file = cache / f"{i}-{temperature}.safetensors"
                if not file.exists():
                    params = SamplingParams(audio_temperature=temperature, diffusion_steps=2, seed=1000 + i)
                    file.write_bytes(rollout_to_bytes(agent.generate(FRAMES, params, human_audio=codes, identity=0)))
                data = file.read_bytes()
                metrics = behaviour_metrics(exchange_from_rollout(rollout_from_bytes(data), codec, wave, identity=0))
                sides.append((data, metrics, temperature))
            out.append(sides)
    finally:
        torch.set_num_threads(threads)
    return out


def simulated_snapshot(root: Path, rounds, simulator: SimulatedAnnotators, seed: int = 0) -> Snapshot:
    """One comparison per round, sides in random order, judged by `simulator`."""
    rng = np.random.default_rng(seed)
    comparisons, rollouts = [], {}
    for i, sides in enumerate(rounds):
        shown = [sides[j] for j in rng.permutation(len(sides))]
        entries = []
        for data, _, temperature in shown:
            candidate = str(uuid.UUID(int=int(rng.integers(2**62))))
            rollouts[candidate] = data
            variant = TEMPERATURES.index(temperature) + 1
            entries.append({"candidate": candidate, "variant": variant, "variant_name": f"t{temperature}",
                            "checkpoint": "default"})
        judgement = simulator.judge(shown[0][1], shown[1][1], rng)
        comparisons.append({"comparison": str(uuid.UUID(int=3 * 10**6 + i)), "round": str(uuid.UUID(int=4 * 10**6 + i)),
                            "scenario": 1, "campaign": "simulated", "a": entries[0], "b": entries[1],
                            "submitted_at": "2026-01-01T00:00:00+00:00",
                            **judgement.as_manifest(("listening",))})
    return write_snapshot(root, comparisons, rollouts, ("listening",))


@pytest.mark.slow
def test_reward_model_learns_one_behaviour_metric_from_simulated_annotators(tmp_path_factory):
    rounds = sample_rounds(tmp_path_factory.mktemp("rollouts"))
    simulator = SimulatedAnnotators(SIMULATOR)
    snapshot = simulated_snapshot(tmp_path_factory.mktemp("snapshot"), rounds, simulator)
    pairs = [(sides[0][1], sides[1][1]) for sides in rounds]
    ceiling = simulator.truth_agreement(pairs)[OVERALL]
    agreement = simulator.self_agreement(pairs)[OVERALL]
    out = tmp_path_factory.mktemp("rm") / "rm"
    assert main(["--snapshot", str(snapshot.path), "--base", str(DEFAULT_AGENT_DIR), "--out", str(out),
                 "--zero_stage", "0", "--num_train_epochs", "2", "--per_device_train_batch_size", "4",
                 "--learning_rate", "3e-4", "--validation_fraction", "0.3", "--per_dimension_heads", "false"]) == 0
    card = json.loads((out / "card.json").read_text())
    accuracy = card["metrics"]["eval/reward/accuracy"]
    print(f"held-out accuracy {accuracy:.3f} on {card['data']['validation_pairs']} pairs; "
          f"simulator self-agreement {agreement:.3f}, truth agreement {ceiling:.3f}")
    assert not math.isnan(accuracy)
    assert accuracy >= 0.75
    assert 0.9 < agreement <= ceiling  # a low-noise simulator, or the labels could not be learnt
