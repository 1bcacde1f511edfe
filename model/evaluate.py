"""Evaluate an agent checkpoint: its behaviour metrics on held-out corpus turns, beside a random agent and the corpus.

    python -m model.evaluate CHECKPOINT [--samples N] [--manipulation-samples M] [--temperatures 0.7 1.0]
                             [--seed S] [--out DIR]

Why this exists: every claim about an agent (its card, a PPO run, the playground) quotes one table:
metric x (this checkpoint at each temperature | a randomly initialised agent of the same
configuration at each temperature | the corpus clips themselves, clean espeak-ng answers and their
codec round trip: the ceilings).

Turns: held-out turn j is the synthetic corpus's clip of seed HELDOUT_SEED + j (training reads
seeds from 0: model.train, model.train_default), cut where the human's question ends; the agent
answers as model.respond does (listening through the turn, then ``response_seconds`` more). Sample
j at temperature T is drawn with sampling seed ``seed + j``, the random agent's weights from
``seed``: the same arguments give the same table. After turns 0 .. N - 1 come the next M held-out
turns that ask for an object in the scene ("pick up the red cup"), so grasp success has turns to be
measured on (about one clip in eight asks).

A column is the mean over its exchanges of each model.metrics.suite metric that applies (NaN left
out), except: turn latency, reported as its distribution (median, p10, p90 over answered turns);
intelligibility, the word error rate pooled over the column's turns (jiwer's corpus WER) and the
share of turns in which the recognizer heard anything; motion, the Frechet distance of all the
column's frames against the motion reference (training-corpus clips 0 .. M - 1) and the diversity
between its samples. OUT gets table.json, table.png and every sample's rollout
(rollouts/<column>/<j>.safetensors) for re-scoring.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.agent import AgentConfig, AgentModel, Rollout, SamplingParams
from model.codec import AudioCodec, load_codec
from model.data.dialogue import DialogueClip, DialogueConfig, corpus_answers, generate_clip
from model.data.store import cached_clips
from model.metrics import (
    Exchange,
    ExchangeScore,
    MotionStatistics,
    Recognizer,
    diversity,
    exchange_from_clip,
    exchange_from_rollout,
    frechet_distance,
    latency_summary,
    requested_object,
    score_exchange,
    word_error_rate,
)
from model.render import SceneObject
from model.respond import AgentResponse, Responder, ResponseConfig
from model.rollout_store import rollout_to_bytes
from model.text import TextEncoder, load_text_encoder
from model.zoo import load_agent

HELDOUT_SEED = 1_000_000  # corpus seeds from here on are never trained on
MOTION_REFERENCE_CLIPS = 16  # training-corpus clips whose frames are the motion Frechet reference
MAX_MANIPULATION_SAMPLES = 32  # about 12% of held-out clips ask for an object: ~270 clips searched
RECOGNIZERS = ("domain", "general")  # pocketsphinx with the in-domain LM (built from the answers) and its own
# The evaluation never looks at pixels: the smallest render the responder allows keeps sampling cheap.
EVALUATION_RESPONSE = ResponseConfig(width=64, height=64)


@dataclass(frozen=True)
class EvaluationConfig:
    """What an evaluation samples."""

    samples: int = 8  # held-out turns per temperature and agent (pooled WER over 8 answers is already telling)
    # Held-out turns that ask for an object in the scene, after the first `samples` (12% of clips do, so
    # the first turns rarely hold one): the rows grasp success is measured on.
    manipulation_samples: int = 4
    temperatures: tuple[float, ...] = (0.7, 1.0)  # the simulated loop's first pair (alignment.loop)
    seed: int = 0  # sampling seeds seed + j, and the random agent's weights
    top_k: int | None = None  # the shipped variants sample from the full distribution
    diffusion_steps: int = 10  # SamplingParams' default: what the variants run in real time
    response_seconds: float = EVALUATION_RESPONSE.response_seconds  # the window annotators judge
    motion_reference_clips: int = MOTION_REFERENCE_CLIPS

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if not 0 <= self.manipulation_samples <= MAX_MANIPULATION_SAMPLES:
            raise ValueError(f"manipulation_samples must lie in [0, {MAX_MANIPULATION_SAMPLES}], "
                             f"got {self.manipulation_samples}")
        if not self.temperatures or not all(t > 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be one or more numbers > 0, got {self.temperatures}")
        if len(set(self.temperatures)) != len(self.temperatures):
            raise ValueError(f"temperatures must be distinct, got {self.temperatures}")
        if self.motion_reference_clips < 1:
            raise ValueError(f"motion_reference_clips must be >= 1, got {self.motion_reference_clips}")
        ResponseConfig(response_seconds=self.response_seconds)  # validates it
        sampling_params(self.temperatures[0], self.seed, top_k=self.top_k, diffusion_steps=self.diffusion_steps)


@dataclass(frozen=True)
class Turn:
    """A human turn: the wave (mono float32 at the codec's rate) and what the agent is asked to be."""

    human_wave: np.ndarray
    prompt: str = "answer the question"
    identity: int = 0
    answer: str | None = None  # the expected answer, when known (corpus turns): intelligibility
    objects: tuple[SceneObject, ...] = ()


def heldout_clip(index: int, codec: AudioCodec) -> DialogueClip:
    """Held-out corpus clip `index` (seed HELDOUT_SEED + index)."""
    if index < 0:
        raise ValueError(f"held-out turn indices start at 0, got {index}")
    return generate_clip(HELDOUT_SEED + index, codec)


def evaluation_clips(config: EvaluationConfig, codec: AudioCodec) -> dict[int, DialogueClip]:
    """Held-out index -> clip of the turns an evaluation samples: 0 .. samples - 1, then the next
    `manipulation_samples` indices whose prompt asks for an object in the scene. The clips come
    through the corpus cache (model.data.store.cached_clips), so the search is paid once per machine."""
    clips = dict(enumerate(cached_clips([HELDOUT_SEED + j for j in range(config.samples)], codec, progress=False)))
    found, start = 0, config.samples
    while found < config.manipulation_samples:
        chunk = range(start, start + 16)
        for j, clip in zip(chunk, cached_clips([HELDOUT_SEED + j for j in chunk], codec, progress=False)):
            if found < config.manipulation_samples and requested_object(clip.prompt, clip.objects) is not None:
                clips[j], found = clip, found + 1
        start = chunk.stop
    return clips


def heldout_turn(index: int, codec: AudioCodec, clip: DialogueClip | None = None) -> Turn:
    """Held-out turn `index`: the human's part of its clip up to the end of the question, with the
    clip's prompt, identity, expected answer and scene objects."""
    clip = clip or heldout_clip(index, codec)
    config = DialogueConfig()
    end = clip.human_span[1] * (config.sample_rate // config.fps)
    return Turn(human_wave=clip.human_wave[:end].numpy().astype(np.float32), prompt=clip.prompt,
                identity=clip.identity, answer=clip.answer, objects=clip.objects)


@dataclass
class Kit:
    """What sampling and scoring need besides the agent, built once: loading costs seconds."""

    codec: AudioCodec
    text_encoder: TextEncoder
    recognizers: dict[str, Recognizer]
    motion_reference: MotionStatistics


@functools.cache
def load_kit(motion_reference_clips: int = MOTION_REFERENCE_CLIPS) -> Kit:
    """The shipped codec and text encoder, both recognizers (the in-domain LM from the corpus answers,
    cached on disk) and the motion of training-corpus clips 0 .. motion_reference_clips - 1."""
    codec = load_codec("default")
    clips = [generate_clip(seed, codec) for seed in range(motion_reference_clips)]
    return Kit(codec=codec, text_encoder=load_text_encoder("default"),
               recognizers={"domain": Recognizer(corpus_answers()), "general": Recognizer()},
               motion_reference=MotionStatistics.of([c.poses.numpy() for c in clips], DialogueConfig().fps))


@dataclass
class Sample:
    """One sampled response with its exchange and its behaviour metrics (model.metrics.suite names)."""

    response: AgentResponse
    exchange: Exchange
    metrics: dict[str, float]
    transcripts: dict[str, str]

    @property
    def rollout(self) -> Rollout:
        return self.response.rollout


def sampling_params(temperature: float, seed: int, *, visual_temperature: float | None = None,
                    top_k: int | None = None, diffusion_steps: int = 10) -> SamplingParams:
    """A variant's sampling at `temperature` (audio and, unless given, visual)."""
    return SamplingParams(audio_temperature=temperature,
                          visual_temperature=temperature if visual_temperature is None else visual_temperature,
                          top_k=top_k, diffusion_steps=diffusion_steps, seed=seed)


def sample_and_score(agent: AgentModel, turn: Turn, temperature: float, seed: int, kit: Kit, *,
                     visual_temperature: float | None = None, top_k: int | None = None, diffusion_steps: int = 10,
                     response: ResponseConfig = EVALUATION_RESPONSE,
                     progress: Callable[[float], None] | None = None) -> Sample:
    """Sample `agent`'s answer to `turn` at `temperature` with sampling seed `seed`, and score it.

    The clip (frames at ``response``'s size, mixed audio) and the rollout are in `Sample.response`;
    the same arguments give the same sample. ValueError: the agent cannot answer this turn.
    """
    params = sampling_params(temperature, seed, visual_temperature=visual_temperature, top_k=top_k,
                             diffusion_steps=diffusion_steps)
    responder = Responder(agent, kit.codec, kit.text_encoder, response)
    sampled = responder.respond(turn.human_wave, turn.prompt, turn.identity, turn.objects, params, progress)
    exchange, score = score_rollout(sampled.rollout, turn, kit, fps=sampled.fps)
    return Sample(sampled, exchange, score.metrics, score.transcripts)


def score_rollout(rollout: Rollout, turn: Turn, kit: Kit, fps: float) -> tuple[Exchange, ExchangeScore]:
    """The exchange of a (sampled or stored) rollout on the turn it answered, and its metrics."""
    exchange = exchange_from_rollout(rollout, kit.codec, turn.human_wave, prompt=turn.prompt, identity=turn.identity,
                                     objects=turn.objects, answer=turn.answer, fps=round(fps))
    return exchange, score_exchange(exchange, kit.recognizers, kit.motion_reference)


def summarise(exchanges: Sequence[Exchange], scores: Sequence[ExchangeScore],
              motion_reference: MotionStatistics) -> dict[str, float]:
    """One column of the table from its exchanges and their scores (see the module docstring)."""
    if not exchanges or len(exchanges) != len(scores):
        raise ValueError(f"a column needs exchanges and as many scores, got {len(exchanges)} and {len(scores)}")
    names = [n for n in scores[0].metrics if not n.startswith(("intelligibility/", "motion/")) and n != "turn/latency_s"]
    column = {}
    for name in names:
        values = np.array([s.metrics[name] for s in scores], dtype=np.float64)
        column[name] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    latency = latency_summary([s.metrics["turn/latency_s"] for s in scores])
    column |= {"turn/latency_median_s": latency["median"], "turn/latency_p10_s": latency["p10"],
               "turn/latency_p90_s": latency["p90"]}
    answered = [(e.answer, s) for e, s in zip(exchanges, scores) if e.answer]
    for kind in scores[0].transcripts:
        heard = [s.transcripts[kind] for _, s in answered]
        column[f"intelligibility/wer_{kind}"] = (word_error_rate([a for a, _ in answered], heard)
                                                 if answered else math.nan)
        column[f"intelligibility/heard_{kind}"] = (float(np.mean([bool(h) for h in heard])) if answered else math.nan)
    poses = [e.poses for e in exchanges]
    fps = exchanges[0].fps
    column["motion/frechet"] = frechet_distance(MotionStatistics.of(poses, fps), motion_reference)
    column["motion/diversity"] = diversity(poses, fps)
    return column


def random_agent(config: AgentConfig, seed: int) -> AgentModel:
    """A freshly initialised agent of `config`, its weights drawn from `seed` (the global RNG is left alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AgentModel(AgentConfig.from_dict(config.to_dict())).eval()


class CheckpointError(ValueError):
    """The checkpoint to evaluate is missing, unreadable or built for another codec."""


def open_checkpoint(checkpoint: str, codec: AudioCodec) -> AgentModel:
    """The agent of "default" or a checkpoint directory, checked against `codec` (CheckpointError if not)."""
    if checkpoint != "default" and not Path(checkpoint).exists():
        raise CheckpointError(f"no agent checkpoint at {checkpoint!r}: give 'default' or a directory with "
                              "config.json and model.safetensors")
    try:
        agent = load_agent(checkpoint)
        agent.config.check_codec(codec)
    except (ValueError, KeyError, TypeError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"cannot use the agent checkpoint {checkpoint!r}: {exc}") from exc
    return agent


@dataclass
class Evaluation:
    """The table (column -> metric -> value; NaN: applies to none of the column's exchanges) and every exchange."""

    checkpoint: str
    config: EvaluationConfig
    table: dict[str, dict[str, float]]
    samples: list[dict] = field(default_factory=list)  # column, turn, seed, metrics, transcripts, rollout
    latencies: dict[str, list[float]] = field(default_factory=dict)  # column -> each answered turn's latency

    @property
    def metrics(self) -> list[str]:
        return list(next(iter(self.table.values())))

    def to_json(self) -> dict:
        return _finite({"checkpoint": self.checkpoint, "config": asdict(self.config), "columns": list(self.table),
                        "table": {m: {c: self.table[c][m] for c in self.table} for m in self.metrics},
                        "latencies": self.latencies, "samples": self.samples})


def evaluate(checkpoint: str, config: EvaluationConfig = EvaluationConfig(), out: Path | None = None,
             progress: bool = True) -> Evaluation:
    """Sample and score `checkpoint`, a random agent of its configuration and the corpus clips on
    `evaluation_clips`' held-out turns; with `out`, write table.json, table.png and the rollouts there."""
    codec = load_codec("default")
    agent = open_checkpoint(checkpoint, codec)  # before the kit: a bad checkpoint fails in a second
    kit = load_kit(config.motion_reference_clips)
    agents = {"checkpoint": agent, "random": random_agent(agent.config, config.seed)}
    response = ResponseConfig(response_seconds=config.response_seconds, width=EVALUATION_RESPONSE.width,
                              height=EVALUATION_RESPONSE.height)
    clips = evaluation_clips(config, kit.codec)
    turns = {j: heldout_turn(j, kit.codec, clip) for j, clip in clips.items()}
    columns: dict[str, tuple[list[Exchange], list[ExchangeScore]]] = {}
    evaluation = Evaluation(checkpoint, config, table={})
    bar = tqdm(total=(len(agents) * len(config.temperatures) + 2) * len(turns), desc="evaluate",
               disable=not progress)
    for name, model in agents.items():
        for temperature in config.temperatures:
            column = f"{name}@{temperature:g}"
            exchanges, scores = columns.setdefault(column, ([], []))
            for j, turn in turns.items():
                seed = config.seed + j
                sample = sample_and_score(model, turn, temperature, seed, kit, top_k=config.top_k,
                                          diffusion_steps=config.diffusion_steps, response=response)
                exchanges.append(sample.exchange)
                scores.append(ExchangeScore(sample.metrics, sample.transcripts))
                rollout = None
                if out is not None:
                    rollout = Path("rollouts") / _slug(column) / f"{j}.safetensors"
                    (out / rollout).parent.mkdir(parents=True, exist_ok=True)
                    (out / rollout).write_bytes(rollout_to_bytes(sample.rollout))
                evaluation.samples.append({"column": column, "turn": j, "seed": seed, "metrics": sample.metrics,
                                           "transcripts": sample.transcripts,
                                           "rollout": None if rollout is None else str(rollout)})
                bar.update()
    for column, voice in (("corpus", None), ("corpus_codec", kit.codec)):
        exchanges, scores = columns.setdefault(column, ([], []))
        for j, clip in clips.items():
            exchange = exchange_from_clip(clip, voice)
            score = score_exchange(exchange, kit.recognizers, kit.motion_reference)
            exchanges.append(exchange)
            scores.append(score)
            evaluation.samples.append({"column": column, "turn": j, "seed": HELDOUT_SEED + j, "metrics": score.metrics,
                                       "transcripts": score.transcripts, "rollout": None})
            bar.update()
    bar.close()
    for column, (exchanges, scores) in columns.items():
        evaluation.table[column] = summarise(exchanges, scores, kit.motion_reference)
        evaluation.latencies[column] = [s.metrics["turn/latency_s"] for s in scores
                                        if not math.isnan(s.metrics["turn/latency_s"])]
    if out is not None:
        write_report(evaluation, out)
    return evaluation


def write_report(evaluation: Evaluation, out: Path) -> tuple[Path, Path]:
    """table.json and table.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    table = out / "table.json"
    table.write_text(json.dumps(evaluation.to_json(), indent=2) + "\n")
    return table, plot_table(evaluation, out / "table.png")


def format_table(evaluation: Evaluation) -> str:
    """The table as text: one row per metric, one column per agent / temperature / corpus."""
    columns = list(evaluation.table)
    width = max(len(m) for m in evaluation.metrics)
    cell = max(9, *(len(c) for c in columns))
    lines = [" " * width + "".join(f"  {c:>{cell}}" for c in columns)]
    for metric in evaluation.metrics:
        values = [evaluation.table[c][metric] for c in columns]
        lines.append(f"{metric:<{width}}" + "".join(f"  {'n/a' if math.isnan(v) else f'{v:.3f}':>{cell}}"
                                                    for v in values))
    return "\n".join(lines)


def plot_table(evaluation: Evaluation, path: Path) -> Path:
    """One small bar chart per metric, bars per column (checkpoint blue, random grey, corpus green);
    latency as the median with its p10-p90 range, the motion Frechet distance on a log scale when it spans decades."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(evaluation.table)
    metrics = [m for m in evaluation.metrics if m not in ("turn/latency_p10_s", "turn/latency_p90_s")]
    colours = {"checkpoint": "tab:blue", "random": "tab:grey", "corpus": "tab:green"}
    ncols = 4
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.6 * nrows), constrained_layout=True, squeeze=False)
    for axis, metric in zip(axes.flat, metrics):
        values = np.array([evaluation.table[c][metric] for c in columns], dtype=np.float64)
        errors = None
        if metric == "turn/latency_median_s":
            low = np.array([evaluation.table[c]["turn/latency_p10_s"] for c in columns])
            high = np.array([evaluation.table[c]["turn/latency_p90_s"] for c in columns])
            errors = np.nan_to_num(np.stack([values - low, high - values]))
        axis.bar(range(len(columns)), np.nan_to_num(values), yerr=errors,
                 color=[colours[c.split("@")[0].split("_")[0]] for c in columns])
        for x, value in enumerate(values):
            if math.isnan(value):
                axis.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7)
        if metric == "motion/frechet" and np.nanmax(values, initial=0) > 100 * max(np.nanmin(values), 1e-3):
            axis.set_yscale("log")  # a random agent's distance is ~1e4 times a trained one's
        axis.set_title(metric, fontsize=9)
        axis.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=7)
        axis.tick_params(axis="y", labelsize=7)
    for axis in axes.flat[len(metrics):]:
        axis.axis("off")
    c = evaluation.config
    fig.suptitle(f"{evaluation.checkpoint}: {c.samples} held-out turns per column + {c.manipulation_samples} "
                 "asking for an object", fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _finite(value):
    """JSON-ready: NaN (does not apply) becomes null."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _slug(column: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", column)


def main(argv: list[str] | None = None) -> Evaluation:
    defaults = EvaluationConfig()
    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="'default' or an agent checkpoint directory")
    parser.add_argument("--samples", type=int, default=defaults.samples, help="held-out turns per column")
    parser.add_argument("--manipulation-samples", type=int, default=defaults.manipulation_samples,
                        help="more held-out turns, each asking for an object in the scene (grasp success)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=list(defaults.temperatures))
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--top-k", type=int, default=None, help="sample from the k most likely codes (default: all)")
    parser.add_argument("--diffusion-steps", type=int, default=defaults.diffusion_steps)
    parser.add_argument("--response-seconds", type=float, default=defaults.response_seconds)
    parser.add_argument("--motion-reference-clips", type=int, default=defaults.motion_reference_clips)
    parser.add_argument("--out", type=Path, help="where table.json, table.png and the rollouts go "
                                                 "(default: evaluation/<checkpoint name>)")
    args = parser.parse_args(argv)
    try:
        config = EvaluationConfig(samples=args.samples, manipulation_samples=args.manipulation_samples,
                                  temperatures=tuple(args.temperatures), seed=args.seed,
                                  top_k=args.top_k, diffusion_steps=args.diffusion_steps,
                                  response_seconds=args.response_seconds,
                                  motion_reference_clips=args.motion_reference_clips)
    except ValueError as exc:
        parser.error(str(exc))
    out = args.out or Path("evaluation") / (Path(args.checkpoint).resolve().name
                                            if args.checkpoint != "default" else "default")
    try:
        evaluation = evaluate(args.checkpoint, config, out)
    except CheckpointError as exc:
        parser.error(str(exc))
    print(format_table(evaluation))
    print(f"wrote {out / 'table.json'}, {out / 'table.png'} and the rollouts under {out / 'rollouts'}")
    return evaluation


if __name__ == "__main__":
    main()
