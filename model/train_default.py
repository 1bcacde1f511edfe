"""Train the shipped default agent on the project's synthetic dialogue corpus (model.data.dialogue).

Why this exists: an untrained agent shows annotators a contorted body and a noisy voice. This
supervised run gives the default agent listening and speaking behaviour learned from data the
project generates itself, in minutes on a CPU::

    python -m model.train_default --out model/assets/agents/default

The corpus and its batches come from model.train.corpus (shared with ``python -m model.train``,
the two-stage DeepSpeed recipe that supersedes this loop); what stays here is the plain AdamW loop
the shipped default was first trained with, kept as the quick single-process baseline.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from model.agent import AgentBatch, AgentConfig, AgentModel
from model.codec import load_codec
from model.data.dialogue import QA_PAIRS
from model.motion import IDENTITIES
from model.text import load_text_encoder
from model.train.corpus import TrainingClip, build_corpus, window_batch


@dataclass(frozen=True)
class TrainConfig:
    """Corpus size and optimisation of the default agent's supervised run."""

    clips: int = 96  # dialogue clips (seeds 0 .. clips - 1): ~10 minutes of speech, ~10 s to generate
    heldout_clips: int = 4  # clips of the following seeds, scored at the end and never trained on
    window_frames: int = 240  # 10 s: whole clips (5.5-9 s), so every window holds both turns
    batch_size: int = 1  # one whole clip, ~0.5-1.5 s per step on 2 CPU cores; steps beat batch size
    steps: int = 1000  # 5.4 min with the corpus on a shared 2-core CPU; 450 steps left turn-taking weak
    lr: float = 2e-3  # high for a transformer, right for a 4M-parameter model trained for minutes
    warmup_steps: int = 20  # linear warm-up, then cosine decay to lr * final_lr_fraction
    final_lr_fraction: float = 0.1  # keeps learning until the last step
    weight_decay: float = 0.01  # AdamW's mild default; the run is far too short to overfit much
    grad_clip: float = 1.0  # the diffusion bound has rare large gradients at t ~ 0
    prompt_dropout: float = 0.2  # some windows lack the prompt, so its empty embedding is trained
    log_every: int = 10  # steps per logged average
    seed: int = 0  # model initialisation, window draws and diffusion noise


def sample_batch(clips: list[TrainingClip], config: TrainConfig, agent_config: AgentConfig,
                 generator: torch.Generator) -> AgentBatch:
    """Random clips from frame 0, all cut to the shortest of them (and to the window)."""
    chosen = [clips[i] for i in torch.randint(len(clips), (config.batch_size,), generator=generator).tolist()]
    frames = min(config.window_frames, *(c.num_frames for c in chosen))
    present = torch.rand(config.batch_size, generator=generator) >= config.prompt_dropout
    return window_batch(chosen, frames, agent_config, present)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to lr * final_lr_fraction at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (config.final_lr_fraction + (1 - config.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(model: AgentModel, batch: AgentBatch, seed: int = 0) -> dict[str, float]:
    """Losses of `batch` with fixed diffusion timesteps and noise, so evaluations are comparable."""
    was_training = model.training
    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        losses = {name: value.item() for name, value in model.loss(batch).items()}
    model.train(was_training)
    return losses


def train(model: AgentModel, clips: list[TrainingClip], config: TrainConfig, progress: bool = True
          ) -> dict[str, float]:
    """Run `config.steps` AdamW steps on random windows; returns the last logged averages."""
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    sums = {"loss/audio": 0.0, "loss/diffusion": 0.0}
    logged: dict[str, float] = {}
    bar = tqdm(range(config.steps), desc="training default agent", disable=not progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        losses = model.loss(sample_batch(clips, config, model.config, generator))
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        sums["loss/audio"] += losses["audio"].item()
        sums["loss/diffusion"] += losses["diffusion"].item()
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            count = (step % config.log_every) + 1
            logged = {name: total / count for name, total in sums.items()}
            sums = dict.fromkeys(sums, 0.0)
            bar.set_postfix({name: f"{value:.3f}" for name, value in logged.items()})
            if progress:
                tqdm.write(f"step {step + 1}: " + ", ".join(f"{n} {v:.4f}" for n, v in logged.items()))
    model.eval()
    return logged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, help="optimizer steps")
    parser.add_argument("--clips", type=int, default=TrainConfig.clips, help="dialogue clips in the corpus")
    args = parser.parse_args()
    config = TrainConfig(steps=args.steps, clips=args.clips)

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    model = AgentModel(AgentConfig.named("tiny"))
    codec, text_encoder = load_codec("default"), load_text_encoder("default")
    clips = build_corpus(range(config.clips), codec, text_encoder, model.config)
    heldout = build_corpus(range(config.clips, config.clips + config.heldout_clips), codec, text_encoder, model.config)
    metrics = train(model, clips, config)
    frames = min(config.window_frames, *(c.num_frames for c in heldout))
    heldout_losses = evaluate(model, window_batch(heldout, frames, model.config))
    seconds = time.perf_counter() - started

    total_frames = sum(c.num_frames for c in clips)
    card = {
        "data": (f"model.data.dialogue synthetic dyadic dialogue: {config.clips} clips (seeds 0-{config.clips - 1}), "
                 f"{total_frames} frames = {total_frames / model.config.fps / 60:.1f} min at {model.config.fps} fps; "
                 f"{len(QA_PAIRS)} question/answer pairs voiced by espeak-ng, {len(IDENTITIES)} identities; "
                 "procedural motion (jaw follows the agent's loudness, nods while listening, breathing, sway)"),
        "steps": config.steps,
        "metrics": {
            **{name: round(value, 4) for name, value in metrics.items()},
            "heldout/audio": round(heldout_losses["audio"], 4),
            "heldout/diffusion": round(heldout_losses["diffusion"], 4),
            "train_seconds": round(seconds, 1),
        },
        "training": {"batch_size": config.batch_size, "window_frames": config.window_frames, "lr": config.lr,
                     "seed": config.seed, "optimizer": "AdamW"},
        "regenerate": f"python -m model.train_default --out DIR --steps {config.steps} --clips {config.clips}",
    }
    path = model.save_pretrained(args.out, card=card)
    print(f"saved {path} in {seconds:.0f} s: {card['metrics']}")


if __name__ == "__main__":
    main()
