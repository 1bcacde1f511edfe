"""python -m alignment.bench ppo: PPO steps per minute and where a step's time goes, at 1 and 2 ranks.

Each rank count runs the real command line (`python -m alignment.ppo`, the deepspeed launcher for
more than one rank) on the default agent with an untrained reward model on its backbone (the
reward's value does not change the cost). A step's time is what the trainer measures around its
three phases (rollout, scoring, learning; `time/*` in metrics.jsonl, averaged over ranks); the
first step is left out as warm-up. The figure that matters is the ratio against the 1-rank
baseline measured in the same run: rollouts per minute over all ranks, 2 ranks / 1 rank.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alignment.metrics_log import read_metrics

PHASES = ("rollout", "scoring", "learning")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts to measure; the first is the baseline")
    parser.add_argument("--steps", type=int, default=4, help="PPO steps per run (the first is warm-up)")
    parser.add_argument("--episode_frames", type=int, default=12)
    parser.add_argument("--batch_size", type=int, default=2, help="rollouts per rank per step")
    parser.add_argument("--diffusion_steps", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("var/bench/ppo"), help="report.json and shares.png go here")


def measure(ranks: int, args: argparse.Namespace, reward_model: Path, work: Path) -> dict:
    """Run PPO on `ranks` ranks; steps per minute and the phases' shares of a step."""
    out = work / f"ranks-{ranks}"
    command = [sys.executable, "-m", "alignment.ppo", "--output_dir", str(out), "--reward_model", str(reward_model),
               "--ranks", str(ranks), "--total_steps", str(args.steps), "--save_steps", str(args.steps),
               "--episode_frames", str(args.episode_frames), "--batch_size", str(args.batch_size),
               "--mini_batch_size", "1", "--diffusion_steps", str(args.diffusion_steps),
               "--corpus_prompts", str(args.batch_size * ranks), "--progress", "false"]
    started = time.perf_counter()
    result = subprocess.run(command, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{ranks}-rank PPO run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    steps = [line["metrics"] for line in read_metrics(out) if "metrics" in line][1:]
    seconds = {phase: sum(m[f"time/{phase}"] for m in steps) for phase in PHASES}
    total = sum(seconds.values())
    return {"ranks": ranks, "steps_measured": len(steps), "seconds_per_step": total / len(steps),
            "steps_per_minute": 60 * len(steps) / total,
            "rollouts_per_minute": 60 * len(steps) * args.batch_size * ranks / total,
            "share": {phase: seconds[phase] / total for phase in PHASES}, "process_wall_s": wall}


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    labels = [f"{run['ranks']} rank(s)" for run in runs]
    bottom = [0.0] * len(runs)
    for phase in PHASES:
        shares = [run["share"][phase] for run in runs]
        left.bar(labels, shares, bottom=bottom, label=phase)
        bottom = [b + s for b, s in zip(bottom, shares)]
    left.set(title="share of a PPO step", ylim=(0, 1))
    left.legend()
    right.bar(labels, [run["rollouts_per_minute"] for run in runs])
    right.set(title="rollouts per minute (all ranks)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from alignment.reward.model import RewardModel
    from model.zoo import load_agent

    if args.steps < 2:
        print("error: --steps must be >= 2: the first step is warm-up", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ppo-bench-") as tmp:
        work = Path(tmp)
        RewardModel.from_agent(load_agent("default")).save_pretrained(work / "reward")
        runs = []
        for ranks in args.ranks:
            print(f"measuring {ranks} rank(s): {args.steps} steps x {args.batch_size} rollouts of "
                  f"{args.episode_frames} frames per rank ...", flush=True)
            runs.append(measure(ranks, args, work / "reward", work))
    baseline = runs[0]
    for run in runs:
        run["rollouts_per_minute_vs_baseline"] = run["rollouts_per_minute"] / baseline["rollouts_per_minute"]
        shares = ", ".join(f"{phase} {run['share'][phase]:.0%}" for phase in PHASES)
        print(f"{run['ranks']} rank(s): {run['steps_per_minute']:.2f} steps/min, {run['rollouts_per_minute']:.1f} "
              f"rollouts/min ({run['rollouts_per_minute_vs_baseline']:.2f}x the {baseline['ranks']}-rank baseline); {shares}")
    report = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "cpu_count": os.cpu_count(), "runs": runs}
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(runs, args.out / "shares.png")
    print(f"report: {args.out / 'report.json'}, figure: {args.out / 'shares.png'}")
    return 0
