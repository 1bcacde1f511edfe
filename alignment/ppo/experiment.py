"""python -m alignment.ppo.experiment --out DIR: does KL-penalised PPO move the agent where a reward model points?

Why this exists: issue 14's claim, end to end on the shipped default agent with 2 DeepSpeed CPU
ranks, reproducible by one command. The targeted behaviour is ``turn/listening`` (the share of the
human's speech frames in which the agent is silent): at the sampling temperature PPO uses (1.0)
the shipped agent talks over most questions (listening ~0.55 on 2-s episodes), so there is room
to move, and the metric is a share, not a 0/1 event, so pairs of samples differ by degrees.
``turn/response_rate`` is saturated there (1.0 at temperature 1.0, 0.0 at 0.7), so it is not a
target; it is reported on the held-out turns (on longer episodes) to show what silence costs.

Phases (each skipped when its output exists, so a rerun resumes):

1. turns: a corpus question (model.data.dialogue.QA_PAIRS) voiced by espeak-ng after 0.2 s of
   silence; training turns use questions 0..29, held-out turns questions 30..39 (never seen in
   reward training or PPO);
2. preferences: per training turn two samples of the default agent (temperature 1.0, two seeds),
   judged by simulated annotators whose hidden utility is listening alone -> a snapshot;
3. reward model: ``python -m alignment.reward`` on that snapshot, on the agent's backbone;
4. PPO: ``python -m alignment.ppo`` with the snapshot's turns as prompts, once per beta;
5. evaluation: the reference and every saved PPO checkpoint answer the held-out turns with the
   same sampling seeds (common random numbers), scored by the behaviour metrics and the reward model;
6. report.md, reward.png, kl.png, metric.png and results.json in --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from alignment.metrics_log import read_metrics
from alignment.simulate import OVERALL, SimulatedAnnotators, SimulatorConfig, Utility
from alignment.snapshot import INFO_FILE

METRIC = "turn/listening"
SIDE_METRICS = ("turn/talked_over", "turn/response_rate")
TRAIN_QUESTIONS = range(0, 30)
HELD_OUT_QUESTIONS = range(30, 40)
LEAD_SECONDS = 0.2
FPS = 24


@dataclass
class ExperimentConfig:
    """Sizes of the experiment; the defaults fit ~30-40 min on a loaded 2-core machine."""

    out: str
    rounds: int = 64  # training turns = preference pairs for the reward model = PPO prompts
    held_out: int = 20  # held-out turns
    eval_seeds: int = 3  # samples per held-out turn and model (the same seeds for every model)
    episode_frames: int = 40  # 1.7 s: most of the question (26-47 frames) after 0.2 s of lead
    eval_frames: int = 72  # 3 s on held-out turns: the whole question and ~1 s after it
    temperature: float = 1.0  # audio sampling temperature of the preference data, PPO and the evaluation
    diffusion_steps: int = 4
    simulator_temperature: float = 0.05  # Bradley-Terry noise in listening units
    rm_epochs: float = 3.0
    rm_learning_rate: float = 3e-4
    betas: tuple[float, ...] = (0.01, 0.05)
    steps: int = 32
    batch_size: int = 4  # rollouts per rank per PPO step
    mini_batch_size: int = 2
    learning_rate: float = 4e-5
    save_steps: int = 8  # checkpoints evaluated on the held-out turns
    ranks: int = 2
    # Nats per rollout, the claimed ceiling of PPO's KL(pi || pi_ref) at every step: < 0.01 nats per action
    # dimension (40 frames x (36 audio tokens + 5 visual tokens x 2 trained denoising steps x 27) = 12,240).
    kl_bound: float = 100.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rounds", "held_out", "eval_seeds", "episode_frames", "eval_frames", "diffusion_steps", "steps",
                     "batch_size", "mini_batch_size", "save_steps", "ranks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rounds < 4:
            raise ValueError(f"rounds must be >= 4 (the reward model holds a quarter out), got {self.rounds}")
        if self.eval_frames < self.episode_frames:
            raise ValueError(f"eval_frames {self.eval_frames} must be >= episode_frames {self.episode_frames}")
        if not self.betas or any(b < 0 for b in self.betas):
            raise ValueError(f"betas must be non-negative, got {self.betas}")
        for name in ("temperature", "simulator_temperature", "rm_epochs", "rm_learning_rate", "learning_rate", "kl_bound"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Turn:
    """One human turn: a corpus question in a human voice after LEAD_SECONDS, `frames` video frames long."""

    question: int
    voice: int
    frames: int

    def wave(self, sample_rate: int) -> np.ndarray:
        from model.data.dialogue import HUMAN_VOICES, QA_PAIRS
        from model.data.speech import synthesize

        speech = synthesize(QA_PAIRS[self.question][0], sample_rate, HUMAN_VOICES[self.voice]).numpy()
        wave = np.zeros(self.frames * sample_rate // FPS, dtype=np.float32)
        start = int(LEAD_SECONDS * sample_rate)
        n = min(speech.size, wave.size - start)
        wave[start:start + n] = speech[:n]
        return wave


def make_turns(questions: range, count: int, frames: int) -> list[Turn]:
    """`count` turns cycling through `questions`, each pass in the next human voice."""
    from model.data.dialogue import HUMAN_VOICES

    return [Turn(questions[i % len(questions)], (i // len(questions) + i) % len(HUMAN_VOICES), frames)
            for i in range(count)]


class Sampler:
    """Answers turns with an agent and scores the exchanges: behaviour metrics and (optionally) a reward model."""

    def __init__(self, codec, reward=None) -> None:
        self.codec, self.reward = codec, reward
        self._codes: dict[Turn, tuple[np.ndarray, torch.Tensor]] = {}

    def turn(self, turn: Turn) -> tuple[np.ndarray, torch.Tensor]:
        if turn not in self._codes:
            wave = turn.wave(self.codec.sample_rate)
            codes = self.codec.encode(torch.from_numpy(wave), self.codec.sample_rate)
            r = round(self.codec.frame_rate / FPS)
            self._codes[turn] = wave, codes[:, :turn.frames * r]
        return self._codes[turn]

    @torch.no_grad()
    def sample(self, agent, turn: Turn, temperature: float, diffusion_steps: int, seed: int):
        """(rollout, metrics) of `agent` answering `turn` with sampling seed `seed`, identity 0."""
        from model.agent import SamplingParams
        from model.metrics import behaviour_metrics, exchange_from_rollout

        wave, codes = self.turn(turn)
        params = SamplingParams(audio_temperature=temperature, diffusion_steps=diffusion_steps, seed=seed)
        rollout = agent.generate(turn.frames, params, human_audio=codes, identity=0)
        metrics = behaviour_metrics(exchange_from_rollout(rollout, self.codec, wave, identity=0))
        if self.reward is not None:
            metrics["reward"] = float(self.reward(rollout.to_batch())[0, self.reward.head_names.index(OVERALL)])
        return rollout, metrics


def simulator(config: ExperimentConfig) -> SimulatedAnnotators:
    """Annotators who judge by listening alone."""
    return SimulatedAnnotators(SimulatorConfig(dimensions={"listening": Utility({METRIC: 1.0})},
                                               temperature=config.simulator_temperature, annotators=5))


def preference_snapshot(config: ExperimentConfig, root: Path, sampler: Sampler, agent, agent_dir: str):
    """Phase 2: two samples per training turn, judged by the simulator; returns (snapshot, metric pairs)."""
    from alignment.snapshot import write_snapshot
    from model.rollout_store import rollout_to_bytes

    annotators, rng = simulator(config), np.random.default_rng(config.seed)
    comparisons, rollouts, pairs = [], {}, []
    for i, turn in enumerate(progress(make_turns(TRAIN_QUESTIONS, config.rounds, config.episode_frames),
                                      "preference pairs")):
        sides = []
        for side in range(2):
            rollout, metrics = sampler.sample(agent, turn, config.temperature, config.diffusion_steps,
                                              seed=10_000 + 2 * i + side)
            candidate = str(uuid.UUID(int=5 * 10**6 + 2 * i + side))
            rollouts[candidate] = rollout_to_bytes(rollout)
            sides.append(({"candidate": candidate, "variant": 1, "variant_name": "default",
                           "checkpoint": agent_dir}, metrics))
        judgement = annotators.judge(sides[0][1], sides[1][1], rng)
        pairs.append((sides[0][1], sides[1][1]))
        comparisons.append({"comparison": str(uuid.UUID(int=6 * 10**6 + i)), "round": str(uuid.UUID(int=7 * 10**6 + i)),
                            "scenario": 1, "campaign": "ppo-experiment", "a": sides[0][0], "b": sides[1][0],
                            "submitted_at": "2026-01-01T00:00:00+00:00", **judgement.as_manifest(("listening",))})
    return write_snapshot(root, comparisons, rollouts, ("listening",)), pairs


def evaluate_policy(sampler: Sampler, agent, config: ExperimentConfig) -> list[dict]:
    """Phase 5 for one model: metrics of every (held-out turn, seed); the seeds are the same for every model."""
    turns = make_turns(HELD_OUT_QUESTIONS, config.held_out, config.eval_frames)
    return [sampler.sample(agent, turn, config.temperature, config.diffusion_steps, seed=20_000 + 100 * i + s)[1]
            for i, turn in enumerate(turns) for s in range(config.eval_seeds)]


def paired_difference(policy: list[dict], reference: list[dict], name: str) -> dict:
    """Mean of `name` under each model and of their per-sample difference, with its standard error."""
    pairs = [(p[name], r[name]) for p, r in zip(policy, reference, strict=True)
             if math.isfinite(p[name]) and math.isfinite(r[name])]
    if not pairs:
        return {"policy": math.nan, "reference": math.nan, "difference": math.nan, "stderr": math.nan, "n": 0}
    p, r = np.array(pairs).T
    d = p - r
    stderr = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
    return {"policy": float(p.mean()), "reference": float(r.mean()), "difference": float(d.mean()),
            "stderr": stderr, "n": len(d)}


def progress(items, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="clip", mininterval=10)


def run_command(command: list[str], log: Path) -> None:
    """Run a CLI of this package with its output in `log`; a failure raises with the log's tail."""
    print("$", " ".join(command), flush=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    with log.open("w") as f:
        code = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise RuntimeError(f"{command[2]} failed with exit status {code}:\n{log.read_text()[-3000:]}")


def train_reward_model(config: ExperimentConfig, snapshot: Path, out: Path, agent_dir: str) -> dict:
    if not (out / "card.json").is_file():
        run_command([sys.executable, "-m", "alignment.reward", "--snapshot", str(snapshot), "--base", agent_dir,
                     "--out", str(out), "--ranks", str(config.ranks), "--num_train_epochs", str(config.rm_epochs),
                     "--per_device_train_batch_size", "4", "--learning_rate", str(config.rm_learning_rate),
                     "--validation_fraction", "0.25", "--per_dimension_heads", "false",
                     "--seed", str(config.seed)], out.parent / "reward.log")
    return json.loads((out / "card.json").read_text())


def ppo_run_dir(work: Path, beta: float) -> Path:
    return work / f"ppo-beta{beta:g}"


def run_ppo(config: ExperimentConfig, beta: float, snapshot: Path, reward: Path, out: Path) -> None:
    if (out / "policy" / "config.json").is_file():
        return
    run_command([sys.executable, "-m", "alignment.ppo", "--output_dir", str(out), "--reward_model", str(reward),
                 "--snapshot", str(snapshot), "--ranks", str(config.ranks), "--episode_frames", str(config.episode_frames),
                 "--total_steps", str(config.steps), "--batch_size", str(config.batch_size),
                 "--mini_batch_size", str(config.mini_batch_size), "--audio_temperature", str(config.temperature),
                 "--diffusion_steps", str(config.diffusion_steps), "--kl_coef", str(beta),
                 "--learning_rate", str(config.learning_rate), "--save_steps", str(config.save_steps),
                 "--save_total_limit", str(config.steps // config.save_steps + 1), "--seed", str(config.seed),
                 "--progress", "false"], out.parent / f"{out.name}.log")


def ppo_curves(run: Path) -> dict[str, list[float]]:
    lines = [line for line in read_metrics(run) if "metrics" in line]
    return {name: [line["metrics"][name] for line in lines] for name in ("ppo/reward", "ppo/kl", "ppo/kl_audio",
                                                                          "ppo/kl_diffusion")} | {
        "step": [line["step"] for line in lines]}


def checkpoints(run: Path) -> dict[int, Path]:
    """Saved PPO policies by step (the run keeps every save_steps-th)."""
    return {int(p.name.split("-")[1]): p / "policy" for p in sorted((run / "checkpoints").glob("step-*[0-9]"))
            if (p / "policy" / "config.json").is_file()}


def mean(rows: list[dict], name: str) -> float:
    values = [row[name] for row in rows if math.isfinite(row[name])]
    return float(np.mean(values)) if values else math.nan


def run(config: ExperimentConfig) -> dict:
    from alignment.reward.model import RewardModel
    from model.agent import AgentModel
    from model.codec import load_codec
    from model.zoo import DEFAULT_AGENT_DIR, load_agent

    torch.set_num_threads(1)
    out = Path(config.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    timings = {}
    started = time.perf_counter()
    agent_dir = str(DEFAULT_AGENT_DIR)
    reference = load_agent("default")
    codec = load_codec("default")

    snapshots = sorted(p for p in (work / "snapshots").glob("*") if (p / INFO_FILE).is_file()) \
        if (work / "snapshots").is_dir() else []
    pairs_file = work / "pairs.json"
    if snapshots and pairs_file.is_file():
        snapshot_path, pairs = snapshots[0], json.loads(pairs_file.read_text())
    else:
        snapshot, pairs = preference_snapshot(config, work / "snapshots", Sampler(codec), reference, agent_dir)
        snapshot_path = snapshot.path
        pairs_file.write_text(json.dumps(pairs))
    annotators = simulator(config)
    data = {"pairs": len(pairs), "self_agreement": annotators.self_agreement(pairs)[OVERALL],
            "truth_agreement": annotators.truth_agreement(pairs)[OVERALL],
            "metric_mean": float(np.nanmean([m[METRIC] for pair in pairs for m in pair])),
            "metric_std": float(np.nanstd([m[METRIC] for pair in pairs for m in pair]))}
    timings["preferences_s"] = time.perf_counter() - started

    started = time.perf_counter()
    card = train_reward_model(config, snapshot_path, work / "reward", agent_dir)
    rm = {"accuracy": card["metrics"].get("eval/reward/accuracy"), "validation_pairs": card["data"].get("validation_pairs"),
          "training_pairs": card["data"].get("train_pairs")}
    timings["reward_model_s"] = time.perf_counter() - started

    runs = {}
    for beta in config.betas:
        started = time.perf_counter()
        run_ppo(config, beta, snapshot_path, work / "reward", ppo_run_dir(work, beta))
        timings[f"ppo_beta{beta:g}_s"] = time.perf_counter() - started
        runs[beta] = ppo_curves(ppo_run_dir(work, beta))

    started = time.perf_counter()
    reward = RewardModel.from_pretrained(work / "reward").eval()
    sampler = Sampler(codec, reward)
    evaluations_file = work / "evaluations.json"
    evaluations = json.loads(evaluations_file.read_text()) if evaluations_file.is_file() else {}
    if "reference" not in evaluations:
        evaluations["reference"] = evaluate_policy(sampler, reference, config)
    for beta in config.betas:
        for step, path in checkpoints(ppo_run_dir(work, beta)).items():
            key = f"beta{beta:g}/step{step}"
            if key not in evaluations:
                print(f"evaluating {key} on the held-out turns", flush=True)
                evaluations[key] = evaluate_policy(sampler, AgentModel.from_pretrained(str(path)).eval(), config)
                evaluations_file.write_text(json.dumps(evaluations))
    evaluations_file.write_text(json.dumps(evaluations))
    timings["evaluation_s"] = time.perf_counter() - started

    results = summarise(config, data, rm, runs, evaluations)
    results["timings_s"] = timings
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(config, results, evaluations, out)
    (out / "report.md").write_text(report(config, results))
    return results


def summarise(config: ExperimentConfig, data: dict, rm: dict, runs: dict, evaluations: dict) -> dict:
    reference = evaluations["reference"]
    per_beta = {}
    for beta, curves in runs.items():
        final = f"beta{beta:g}/step{config.steps}"
        held_out = {name: paired_difference(evaluations[final], reference, name)
                    for name in (METRIC, *SIDE_METRICS, "reward")}
        reward, kl = curves["ppo/reward"], curves["ppo/kl"]
        k = max(1, len(reward) // 5)  # first and last fifth of the run
        per_beta[f"{beta:g}"] = {
            "reward_start": float(np.mean(reward[:k])), "reward_end": float(np.mean(reward[-k:])),
            "kl_end": float(np.mean(kl[-k:])), "kl_max": float(max(kl)), "held_out": held_out,
        }
    betas = sorted(config.betas)
    claims = {
        "reward of samples rises": all(b["reward_end"] > b["reward_start"] for b in per_beta.values()),
        f"{METRIC} improves on held-out turns": all(b["held_out"][METRIC]["difference"] > 0 for b in per_beta.values()),
        f"KL stays below {config.kl_bound:g} nats at every step": all(b["kl_max"] < config.kl_bound
                                                                       for b in per_beta.values()),
        f"beta={betas[-1]:g} ends with a lower KL than beta={betas[0]:g}":
            per_beta[f"{betas[-1]:g}"]["kl_end"] < per_beta[f"{betas[0]:g}"]["kl_end"],
    }
    return {"config": asdict(config), "preferences": data, "reward_model": rm, "runs": per_beta, "claims": claims,
            "curves": {f"{beta:g}": curves for beta, curves in runs.items()}}


def held_out_curve(config: ExperimentConfig, evaluations: dict, beta: float, name: str) -> tuple[list[int], list[float]]:
    steps = [0] + sorted(int(key.split("step")[1]) for key in evaluations if key.startswith(f"beta{beta:g}/"))
    values = [mean(evaluations["reference"] if s == 0 else evaluations[f"beta{beta:g}/step{s}"], name) for s in steps]
    return steps, values


def plot(config: ExperimentConfig, results: dict, evaluations: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("reward.png", "reward-model score of PPO's samples", "ppo/reward", None),
              ("kl.png", "KL(pi || pi_ref) per rollout (nats)", "ppo/kl", config.kl_bound))
    for file, title, name, bound in panels:
        fig, axis = plt.subplots(figsize=(6, 4), constrained_layout=True)
        for beta, curves in results["curves"].items():
            axis.plot(curves["step"], curves[name], label=f"beta={beta}")
        if bound is not None:
            axis.axhline(bound, color="grey", linestyle="--", label=f"bound {bound:g}")
        axis.set(title=title, xlabel="PPO step")
        axis.legend()
        fig.savefig(out / file, dpi=100)
        plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for axis, name in zip(axes, (METRIC, "turn/talked_over")):
        for beta in config.betas:
            axis.plot(*held_out_curve(config, evaluations, beta, name), marker="o", label=f"beta={beta:g}")
        axis.axhline(mean(evaluations["reference"], name), color="grey", linestyle="--", label="reference")
        axis.set(title=f"{name} on held-out turns ({config.held_out} x {config.eval_seeds} samples)",
                 xlabel="PPO step (0: the reference)")
        axis.legend()
    fig.savefig(out / "metric.png", dpi=100)
    plt.close(fig)


def report(config: ExperimentConfig, results: dict) -> str:
    def f(x: float) -> str:
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"

    data, rm = results["preferences"], results["reward_model"]
    lines = [
        "# PPO experiment: listening on the default agent", "",
        f"Command: `{command_line(config)}`", "",
        f"Targeted behaviour: `{METRIC}` at audio temperature {config.temperature:g} "
        f"({config.episode_frames}-frame episodes for preferences and PPO, {config.eval_frames}-frame held-out episodes).", "",
        "## Claims", "",
        *[f"- {'PASS' if ok else 'FAIL'}: {claim}" for claim, ok in results["claims"].items()], "",
        "## Reward model", "",
        f"{data['pairs']} preference pairs (two samples of the default agent per training turn; listening "
        f"{f(data['metric_mean'])} +- {f(data['metric_std'])}), simulated annotators judging by listening alone "
        f"(noise {config.simulator_temperature:g}); self-agreement {f(data['self_agreement'])}, truth agreement "
        f"(the ceiling) {f(data['truth_agreement'])}. Held-out accuracy of the reward model "
        f"{f(rm['accuracy'])} on {rm['validation_pairs']} pairs.", "",
        "## PPO", "",
        "| beta | reward start -> end | final KL (max) | listening policy vs reference (held-out) | "
        "talked over | response rate | RM score (held-out) |",
        "|---|---|---|---|---|---|---|",
    ]
    for beta, run in results["runs"].items():
        h = run["held_out"]

        def pair(name: str, h: dict = h) -> str:
            return (f"{f(h[name]['policy'])} vs {f(h[name]['reference'])} "
                    f"({h[name]['difference']:+.3f} +- {f(h[name]['stderr'])})")

        lines.append(f"| {beta} | {f(run['reward_start'])} -> {f(run['reward_end'])} | {f(run['kl_end'])} "
                     f"({f(run['kl_max'])}) | {pair(METRIC)} | {pair('turn/talked_over')} | "
                     f"{pair('turn/response_rate')} | {pair('reward')} |")
    lines += ["", "Start/end: means over the first and last fifth of the steps. Held-out: the final policy and the "
              f"reference answer the same {config.held_out} unseen turns with the same {config.eval_seeds} seeds "
              "each; +- is the standard error of the paired difference.", "",
              "![reward](reward.png)", "", "![KL](kl.png)", "", "![metric](metric.png)", "",
              "Wall time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in results["timings_s"].items()), ""]
    return "\n".join(lines)


def command_line(config: ExperimentConfig) -> str:
    defaults = ExperimentConfig(out=config.out)
    args = [f"--out {config.out}"]
    for name, value in asdict(config).items():
        if name != "out" and value != getattr(defaults, name):
            args.append(f"--{name} " + (" ".join(map(str, value)) if isinstance(value, tuple) else str(value)))
    return "python -m alignment.ppo.experiment " + " ".join(args)


def parse_arguments(argv: list[str]) -> ExperimentConfig:
    parser = argparse.ArgumentParser(prog="python -m alignment.ppo.experiment", description=__doc__.split("\n")[0])
    defaults = ExperimentConfig(out="")
    parser.add_argument("--out", required=True, help="report.md, the PNGs and results.json go here; work/ holds the runs")
    for name, value in asdict(defaults).items():
        if name == "out":
            continue
        if isinstance(value, tuple):
            parser.add_argument(f"--{name}", type=float, nargs="+", default=value)
        else:
            parser.add_argument(f"--{name}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    args["betas"] = tuple(args["betas"])
    return ExperimentConfig(**args)


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_arguments(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = run(config)
    for claim, ok in results["claims"].items():
        print(f"{'PASS' if ok else 'FAIL'}: {claim}")
    print(f"report: {Path(config.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
