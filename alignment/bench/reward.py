"""python -m alignment.bench reward: preference pairs per second of reward-model training, vs plain TRL.

Why this exists: the reward model trains through our `AgentRewardTrainer` (TRL's RewardTrainer
with G's exchanges, several heads, masks and DeepSpeed); this measures what that costs against a
stock `trl.RewardTrainer` training the same RewardModel on the same pairs in the same run.

The data are real rollouts: the agent (`--agent`, default the shipped one) answers `--rounds`
random human turns `--per-round` times; every pair of one round's rollouts is a comparison, and
the list repeats until there are `--pairs`. Then, one after the other:

- ``trl``: stock `trl.RewardTrainer` in this process, no DeepSpeed. Its collator and loss are
  TRL's own; the model it trains is the RewardModel behind a one-token "id" per clip (the
  dataset is already tokenised, so TRL skips its tokeniser), which loads the clip from the
  snapshot in forward, as our data loader does;
- ``ours``: `python -m alignment.reward` in process-free form (``--zero_stage 0``, one rank), then
  under the deepspeed launcher with ZeRO-2 at 1 and 2 ranks.

Throughput is training pairs x epochs / the Trainer's own ``train_runtime`` (the training loop:
no process start, no model loading, no evaluation); ratios are against ``trl``. Goal: >= 1.0x.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import torch
from tqdm import tqdm

from alignment.metrics_log import read_metrics

REPO_ROOT = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", default="default", help="agent checkpoint ('default', 'debug' or a directory)")
    parser.add_argument("--rounds", type=int, default=8, help="human turns (the split holds some out)")
    parser.add_argument("--per-round", type=int, default=3, help="rollouts per turn; all their pairs are used")
    parser.add_argument("--pairs", type=int, default=96, help="comparisons in the snapshot (pairs repeat)")
    parser.add_argument("--frames", type=int, default=24, help="video frames per rollout (24 = 1 s)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per rank per step")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="DeepSpeed ZeRO-2 rank counts")
    parser.add_argument("--validation-fraction", type=float, default=0.3,
                        help="share of rounds the split holds out (the runs need some; they are not timed)")
    parser.add_argument("--workdir", type=Path,
                        help="keep the snapshot and runs here, and reuse a snapshot found there (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")


def run(args: argparse.Namespace) -> int:
    for name in ("rounds", "per_round", "pairs", "frames", "batch_size"):
        if getattr(args, name) < (2 if name == "per_round" else 1):
            print(f"error: --{name.replace('_', '-')} is too small: {getattr(args, name)}", file=sys.stderr)
            return 2
    if not args.epochs > 0 or any(r < 1 for r in args.ranks):
        print("error: --epochs must be > 0 and every --ranks >= 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="reward-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        base = _agent_dir(args.agent, workdir)
        snapshot = _existing_snapshot(workdir / "snapshot") or build_snapshot(
            workdir / "snapshot", base, args.rounds, args.per_round, args.pairs, args.frames)
        try:
            from alignment.reward.train import RunRefused
            results = _run_all(args, snapshot.path, base, workdir)
        except RunRefused as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    baseline = results[0]["pairs_per_second"]
    for result in results:
        result["ratio_to_trl"] = result["pairs_per_second"] / baseline
    report = {"agent": args.agent, "frames": args.frames, "epochs": args.epochs, "batch_size": args.batch_size,
              "threads": torch.get_num_threads(), "results": results}
    print(table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _run_all(args: argparse.Namespace, snapshot: Path, base: Path, workdir: Path) -> list[dict]:
    """TRL first (the baseline), then ours in process and under DeepSpeed ZeRO-2 at each rank count."""
    runs = [("trl", 1, None), ("ours", 1, 0)] + [("ours", ranks, 2) for ranks in args.ranks]
    results = []
    for kind, ranks, zero in tqdm(runs, desc="reward bench", unit="run"):
        if kind == "trl":
            result = train_trl(snapshot, base, args.epochs, args.batch_size, args.validation_fraction)
        else:
            result = train_ours(snapshot, base, workdir / f"ours-{ranks}-zero{zero}", ranks, zero,
                                args.epochs, args.batch_size, args.validation_fraction)
        results.append({"trainer": kind, "ranks": ranks, "zero_stage": zero, **result})
    return results


def _existing_snapshot(root: Path):
    from alignment.snapshot import Snapshot

    found = sorted(p for p in root.glob("*") if (p / "snapshot.json").is_file()) if root.is_dir() else []
    return Snapshot.load(found[0]) if len(found) == 1 else None


def table(report: dict) -> str:
    lines = [f"reward training, agent {report['agent']}, {report['frames']} frames a clip, "
             f"batch {report['batch_size']} pairs per rank, {report['epochs']} epochs",
             f"{'trainer':<8}{'ranks':>6}{'ZeRO':>6}{'pairs':>8}{'seconds':>9}{'pairs/s':>9}{'vs TRL':>8}"]
    for r in report["results"]:
        zero = "-" if r["zero_stage"] is None else str(r["zero_stage"])
        lines.append(f"{r['trainer']:<8}{r['ranks']:>6}{zero:>6}{r['pairs']:>8}{r['seconds']:>9.2f}"
                     f"{r['pairs_per_second']:>9.2f}{r['ratio_to_trl']:>7.2f}x")
    return "\n".join(lines)


def _agent_dir(agent: str, workdir: Path) -> Path:
    """A checkpoint directory for `agent`: 'default' is shipped; a named configuration is saved once."""
    from model.agent import AgentConfig, AgentModel
    from model.agent.config import NAMED_CONFIGS
    from model.zoo import DEFAULT_AGENT_DIR

    if agent == "default":
        return DEFAULT_AGENT_DIR
    if agent in NAMED_CONFIGS:
        path = workdir / f"agent-{agent}"
        if not (path / "config.json").exists():
            torch.manual_seed(0)
            AgentModel(AgentConfig.named(agent)).save_pretrained(path, card={"data": "random init, benchmark"})
        return path
    return Path(agent)


def build_snapshot(root: Path, base: Path, rounds: int, per_round: int, pairs: int, frames: int):
    """A snapshot of `pairs` comparisons between real rollouts of `base` (labels alternate sides)."""
    from alignment.snapshot import write_snapshot
    from model.agent import AgentModel, SamplingParams
    from model.rollout_store import rollout_to_bytes

    agent = AgentModel.from_pretrained(str(base)).eval()
    c = agent.config
    g = torch.Generator().manual_seed(0)
    turns, rollouts = [], {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # sampling is not timed; one thread is fastest for one stream (model.bench)
    try:
        with tqdm(total=rounds * per_round, desc="sampling rollouts", unit="rollout") as bar:
            for i in range(rounds):
                human = torch.randint(0, c.codebook_size, (c.num_codebooks, frames * c.audio_frames_per_video_frame),
                                      generator=g)
                candidates = []
                for j in range(per_round):
                    rollout = agent.generate(frames, SamplingParams(audio_temperature=0.5 + j * 0.5, diffusion_steps=2,
                                                                    seed=i * per_round + j), human_audio=human)
                    candidate = str(uuid.UUID(int=10**9 + i * per_round + j))
                    rollouts[candidate] = rollout_to_bytes(rollout)
                    candidates.append(candidate)
                    bar.update()
                turns.append((str(uuid.UUID(int=10**6 + i)), candidates))
    finally:
        torch.set_num_threads(threads)
    combos = [(round_id, a, b) for round_id, cs in turns for k, a in enumerate(cs) for b in cs[k + 1:]]
    comparisons = []
    for n in range(pairs):
        round_id, a, b = combos[n % len(combos)]
        side = "a" if n % 2 else "b"
        comparisons.append({
            "comparison": str(uuid.UUID(int=2 * 10**6 + n)), "round": round_id, "scenario": 1, "campaign": "bench",
            "annotator": 1 + n // len(combos), "labels": {"listening": side}, "overall": side, "strength": 2,
            "confidence": 4, "submitted_at": "2026-01-01T00:00:00+00:00",
            "a": {"candidate": a, "variant": 1, "variant_name": "v1", "checkpoint": str(base)},
            "b": {"candidate": b, "variant": 2, "variant_name": "v2", "checkpoint": str(base)},
        })
    return write_snapshot(root, comparisons, rollouts, ("listening",))


def train_ours(snapshot: Path, base: Path, out: Path, ranks: int, zero: int, epochs: float, batch: int,
               validation_fraction: float) -> dict:
    """`python -m alignment.reward` as a user runs it, one overall head, no evaluation inside the loop."""
    command = [sys.executable, "-m", "alignment.reward", "--snapshot", str(snapshot), "--base", str(base),
               "--out", str(out), "--ranks", str(ranks), "--zero_stage", str(zero), "--per_dimension_heads", "false",
               "--num_train_epochs", str(epochs), "--per_device_train_batch_size", str(batch),
               "--eval_strategy", "no", "--validation_fraction", str(validation_fraction), "--logging_steps", "1000000", "--disable_tqdm", "true"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.parent / f"{out.name}.log"
    with open(log, "w") as f:
        rc = subprocess.call(command, cwd=REPO_ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({rc}); its log:\n{log.read_text()[-3000:]}")
    summary = next(line["metrics"] for line in reversed(read_metrics(out)) if "train/train_runtime" in
                   line.get("metrics", {}))
    card = json.loads((out / "card.json").read_text())
    trained = card["data"]["train_pairs"] * epochs
    return {"pairs": card["data"]["train_pairs"], "seconds": summary["train/train_runtime"],
            "pairs_per_second": trained / summary["train/train_runtime"]}


def train_trl(snapshot: Path, base: Path, epochs: float, batch: int, validation_fraction: float) -> dict:
    """Stock `trl.RewardTrainer` on the same RewardModel and training pairs (see the module docstring)."""
    import datasets
    import trl
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast
    from transformers.modeling_outputs import SequenceClassifierOutput

    from alignment.reward import RewardModel, pad_batches
    from alignment.reward.config import RewardJobArguments
    from alignment.reward.data import batch_to, load_exchange
    from alignment.reward.train import preflight

    plan = preflight(RewardJobArguments(snapshot=str(snapshot), base=str(base), out="unused",
                                        per_dimension_heads=False, validation_fraction=validation_fraction))
    paths = [p.chosen for p in plan.train] + [p.rejected for p in plan.train]
    n = len(plan.train)

    class IndexedClips(PreTrainedModel):
        """TRL's model contract (input_ids -> logits (N, 1)) over clips named by their index."""

        config_class = PretrainedConfig

        def __init__(self, reward: RewardModel) -> None:
            super().__init__(PretrainedConfig(num_labels=1))
            self.reward = reward

        def forward(self, input_ids, attention_mask=None, **_):
            clips, lengths = pad_batches([load_exchange(paths[i]) for i in input_ids[:, 0].tolist()],
                                         self.reward.config.special_token)
            device = input_ids.device
            return SequenceClassifierOutput(logits=self.reward(batch_to(clips, device), lengths.to(device)))

    torch.manual_seed(0)  # the head init of our runs (RewardConfig.seed)
    model = IndexedClips(RewardModel.from_agent(base, ()).train())
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"<pad>": 0, "<eos>": 1},
                                                                             unk_token="<pad>")),
                                        pad_token="<pad>", eos_token="<eos>")
    data = datasets.Dataset.from_dict({"chosen_ids": [[i] for i in range(n)],
                                       "rejected_ids": [[n + i] for i in range(n)]})
    with tempfile.TemporaryDirectory(prefix="trl-reward-") as out:
        config = trl.RewardConfig(output_dir=out, num_train_epochs=epochs, per_device_train_batch_size=batch,
                                  learning_rate=1e-4, warmup_steps=0.1, save_strategy="no", eval_strategy="no",
                                  logging_steps=1000000, report_to=[], gradient_checkpointing=False, bf16=False,
                                  disable_tqdm=True, seed=0)
        trainer = trl.RewardTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
        seconds = trainer.train().metrics["train_runtime"]
    if not math.isfinite(seconds) or seconds <= 0:
        raise RuntimeError(f"TRL reported a training time of {seconds} s")
    return {"pairs": n, "seconds": seconds, "pairs_per_second": n * epochs / seconds}
