"""One stage of the agent's supervised fine-tuning through the Hugging Face Trainer and DeepSpeed.

Why the Trainer: it brings DeepSpeed (ZeRO-2 by default, config in model/train/deepspeed/),
distributed sampling over ranks, tqdm progress, checkpoints and resuming, so none is hand-written.

Stages, as in the paper: "audio" trains dialogue audio alone: the agent's visual tokens are zeros
(the rest pose), the visual (diffusion) loss is masked and the visual layers are frozen;
"audiovisual" trains both losses on everything and starts from a stage-1 checkpoint (``--init``).
OUT receives the agent (config.json, model.safetensors, card.json), loss.png beside it, and the
Trainer's checkpoints under OUT/checkpoints (``--resume`` continues from the last one).

The clips come from the corpus cache (model.data.store.cached_clips), which the launching process
fills before it starts the ranks: each clip is generated once per machine, not once per rank and stage.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from transformers import HfArgumentParser, Trainer, TrainingArguments

from model.agent import AgentConfig, AgentModel
from model.codec import AudioCodec, load_codec
from model.data.dialogue import DialogueConfig
from model.data.monologue import TEXT_VOCAB
from model.data.store import cached_clips
from model.text import load_text_encoder
from model.train.corpus import ClipCollator, ClipDataset, build_corpus

DEEPSPEED_CONFIGS = Path(__file__).parent / "deepspeed"
STAGES = ("audio", "audiovisual")
# Layers only the visual stream trains: frozen in stage 1, whose loss never reaches them.
VISUAL_PARAMETERS = ("diffusion.", "embedder.agent_visual.", "embedder.human_visual.")
TRAINER_DEFAULTS = {  # the default agent's recipe; any may be overridden on the command line
    "per_device_train_batch_size": "1", "learning_rate": "2e-3", "warmup_steps": "20", "weight_decay": "0.01",
    "lr_scheduler_type": "cosine_with_min_lr", "lr_scheduler_kwargs": '{"min_lr_rate": 0.1}', "max_grad_norm": "1.0",
    "logging_steps": "10", "save_steps": "200", "save_total_limit": "2", "report_to": "none",
    "remove_unused_columns": "False", "dataloader_num_workers": "0", "seed": "0", "max_steps": "1000",
}


@dataclass
class SFTJobArguments:
    """What one stage trains on, from what, and where it goes."""

    stage: str = field(metadata={"help": "audio (stage 1) or audiovisual (stage 2)"})
    out: str = field(metadata={"help": "directory for the trained agent, its card, loss.png and checkpoints"})
    init: str = field(default="tiny", metadata={"help": "tiny (fresh weights, seeded) or a checkpoint directory"})
    clips: int = field(default=96, metadata={"help": "training clips: corpus seeds 0 .. clips - 1"})
    window_frames: int = field(default=240, metadata={"help": "frames per example, from frame 0 (10 s)"})
    prompt_dropout: float = field(default=0.2, metadata={"help": "share of examples without their prompt"})
    turn_weight: float = field(default=1.0, metadata={"help": "audio-loss weight of the turn-taking steps (the "
                                                             "human's turn, the gap, the agent's onset)"})
    turn_buckets: int = field(default=0, metadata={"help": "give the agent the turn feature with this many buckets "
                                                           "(model.agent.inputs.turn_buckets); 0: as the init has it"})
    scene_objects: int = field(default=0, metadata={"help": "give the agent the scene input with this many object "
                                                            "slots (model.agent.inputs.scene_features); 0: as the init has it"})
    monologue: bool = field(default=False, metadata={"help": "give the agent the inner monologue, its own text "
                                                        "stream (AgentConfig.text_vocab, model.data.monologue); "
                                                        "False: as the init has it"})
    hazard_weight: float = field(default=0.0, metadata={"help": "weight of the onset-hazard loss "
                                                               "(AgentModel.onset_hazard_loss; agents with quiet codes)"})
    ranks: int = field(default=1, metadata={"help": "DeepSpeed ranks (CPU processes) to launch"})
    zero_stage: int = field(default=2, metadata={"help": "DeepSpeed ZeRO stage 2 (default) or 3; 0: no DeepSpeed"})
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint under OUT/checkpoints"})
    corpus_cache: bool = field(default=True, metadata={"help": "read the clips from the corpus cache under "
                                                              "$HER_CACHE_DIR/corpus (default ~/.cache/her), generating "
                                                              "there once what it lacks, before the ranks start "
                                                              "(model.data.store.cached_clips); False: every rank "
                                                              "generates them anew"})

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.clips < 1 or self.window_frames < 2:
            raise ValueError(f"clips must be >= 1 and window_frames >= 2, got {self.clips} and {self.window_frames}")
        if self.turn_buckets == 1 or self.turn_buckets < 0:
            raise ValueError(f"turn_buckets must be 0 or >= 2, got {self.turn_buckets}")
        if self.scene_objects < 0:
            raise ValueError(f"scene_objects must be >= 0, got {self.scene_objects}")
        if not self.turn_weight > 0:
            raise ValueError(f"turn_weight must be > 0, got {self.turn_weight}")
        if self.hazard_weight < 0:
            raise ValueError(f"hazard_weight must be >= 0, got {self.hazard_weight}")
        if not 0 <= self.prompt_dropout < 1:
            raise ValueError(f"prompt_dropout must lie in [0, 1), got {self.prompt_dropout}")
        if not 1 <= self.ranks <= 2:
            raise ValueError(f"ranks must be 1 or 2 (CPU ranks), got {self.ranks}")
        if self.zero_stage not in (0, 2, 3):
            raise ValueError(f"zero_stage must be 0, 2 or 3, got {self.zero_stage}")
        if self.init != "tiny" and not (Path(self.init) / "config.json").is_file():
            raise ValueError(f"init {self.init!r} is neither 'tiny' (fresh weights) nor a checkpoint "
                             "directory with config.json")
        if self.stage == "audiovisual" and self.init == "tiny":
            raise ValueError("stage audiovisual starts from a stage-1 checkpoint: pass --init DIR")

    @property
    def deepspeed_config(self) -> str | None:
        return None if self.zero_stage == 0 else str(DEEPSPEED_CONFIGS / f"zero{self.zero_stage}.json")


class SFTObjective(nn.Module):
    """The agent with the stage's loss as its forward, so the DeepSpeed engine runs it whole."""

    def __init__(self, agent: AgentModel, stage: str, hazard_weight: float = 0.0) -> None:
        super().__init__()
        self.agent, self.stage, self.hazard_weight = agent, stage, hazard_weight
        if stage == "audio":
            for name, parameter in agent.named_parameters():
                if name.startswith(VISUAL_PARAMETERS):
                    parameter.requires_grad_(False)

    def forward(self, batch, audio_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        losses = self.agent.loss(batch, audio_weights, self.hazard_weight)
        if self.stage == "audio":  # the visual loss masked: reported, never trained on
            losses["loss"] = (losses["audio"] + self.hazard_weight * losses["hazard"]
                              + self.agent.config.text_loss_weight * losses["text"])
        return losses


class SFTTrainer(Trainer):
    """The Trainer with the agent's loss; logs the audio and diffusion parts beside the total."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.can_return_loss = True
        self.label_names = []
        self._parts = {"audio": [0.0, 0], "audio_mean": [0.0, 0], "diffusion": [0.0, 0], "hazard": [0.0, 0],
                       "text": [0.0, 0]}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        losses = model(inputs["batch"], inputs.get("audio_weights"))
        for name, total in self._parts.items():
            total[0] += losses[name].item()
            total[1] += 1
        return (losses["loss"], losses) if return_outputs else losses["loss"]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for name, (total, count) in self._parts.items():
            if count and "loss" in logs:
                logs[f"loss/{name}"] = total / count
        if "loss" in logs:
            self._parts = {name: [0.0, 0] for name in self._parts}
        super().log(logs, start_time)


def initial_agent(init: str, seed: int, turn_buckets: int = 0, codec: AudioCodec | None = None,
                  scene_objects: int = 0, monologue: bool = False) -> AgentModel:
    """Fresh weights of the tiny configuration (seeded), or a checkpoint's, with the inputs asked for.

    Every agent gets the codec's quiet codes (from `codec`; model.agent.sampling, the onset-hazard
    loss). `turn_buckets` gives the agent the turn feature, `scene_objects` the scene input,
    `monologue` the text stream (model.data.monologue's TEXT_VOCAB); a checkpoint without one keeps
    all its weights and gains the new part (the turn and text embeddings zero, so it starts out
    speaking as it was; the text head is new). 0 / False keeps what the init has.
    """
    torch.manual_seed(seed)
    agent = AgentModel(AgentConfig.named(init)) if init == "tiny" else AgentModel.from_pretrained(init)
    changes, grown_keys = {}, set()
    if not agent.config.quiet_codes:  # sampling and the onset-hazard loss read them; no weights of their own
        changes["quiet_codes"] = quiet_codes(codec or load_codec("default"))
    if turn_buckets and agent.config.turn_buckets != turn_buckets:
        if agent.config.turn_buckets:
            raise ValueError(f"{init} already has {agent.config.turn_buckets} turn buckets, not {turn_buckets}")
        changes["turn_buckets"] = turn_buckets
        grown_keys.add("embedder.turn.weight")
    if scene_objects and agent.config.scene_objects != scene_objects:
        if agent.config.scene_objects:
            raise ValueError(f"{init} already reads {agent.config.scene_objects} scene objects, not {scene_objects}")
        changes["scene_objects"] = scene_objects
        grown_keys |= {"embedder.scene.weight", "embedder.empty.scene"}
    if monologue and agent.config.text_vocab != TEXT_VOCAB:
        if agent.config.text_vocab:
            raise ValueError(f"{init} already has a text stream of {agent.config.text_vocab} tokens, not {TEXT_VOCAB}")
        changes["text_vocab"] = TEXT_VOCAB
        grown_keys |= {"embedder.text.weight", "text_head.weight", "text_head.bias"}
    if not changes:
        return agent
    grown = AgentModel(replace(agent.config, **changes))
    missing, unexpected = grown.load_state_dict(agent.state_dict(), strict=False)
    if unexpected or set(missing) != grown_keys:
        raise ValueError(f"cannot add {sorted(changes)} to {init}: missing {missing}, unexpected {unexpected}")
    return grown


def quiet_codes(codec: AudioCodec) -> list[int]:
    """The codec's codebook-0 codes of silence and of faint noise up to -55 dBFS (a quiet room): the
    codes that mean "the human is not speaking"."""
    rate = codec.sample_rate
    generator = torch.Generator().manual_seed(0)
    waves = [torch.zeros(rate)] + [torch.randn(rate, generator=generator) * 10 ** (db / 20) for db in (-90, -75, -65, -55)]
    return sorted({int(code) for wave in waves for code in codec.encode(wave, rate)[0, 4:-4]})


def plot_loss(log_history: list[dict], path: Path, title: str) -> Path:
    """The logged training losses against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for name in ("loss", "loss/audio", "loss/audio_mean", "loss/diffusion", "loss/hazard", "loss/text"):
        points = [(line["step"], line[name]) for line in log_history if name in line]
        if any(value > 0 for _, value in points):  # a part the agent lacks (no text stream) logs 0
            ax.plot(*zip(*points), label=name)
    ax.set(title=title, xlabel="step", ylabel="loss", yscale="log")
    ax.legend()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def train(job: SFTJobArguments, args: TrainingArguments) -> dict:
    """Train one stage on this rank; rank 0 writes the agent, its card and loss.png to job.out."""
    codec, text_encoder = load_codec("default"), load_text_encoder("default")
    agent = initial_agent(job.init, args.seed, job.turn_buckets, codec, job.scene_objects, job.monologue)
    main_rank = args.process_index == 0
    clips = build_corpus(range(job.clips), codec, text_encoder, agent.config, progress=main_rank,
                         cache=job.corpus_cache)
    visual = job.stage == "audiovisual"
    collator = ClipCollator(agent.config, job.window_frames, job.prompt_dropout, visual, seed=args.seed,
                            turn_weight=job.turn_weight)
    objective = SFTObjective(agent, job.stage, job.hazard_weight).train()
    trainer = SFTTrainer(model=objective, args=args, train_dataset=ClipDataset(clips), data_collator=collator)
    checkpoints = Path(args.output_dir)
    resume = job.resume and any(checkpoints.glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    history = trainer.state.log_history
    losses = [line for line in history if "loss" in line]
    summary = {"first": losses[0] if losses else {}, "last": losses[-1] if losses else {}}
    if trainer.is_world_process_zero():
        result = AgentModel(agent.config)
        result.load_state_dict({k.removeprefix("agent."): v.detach().cpu() for k, v in state.items()})
        frames = sum(c.num_frames for c in clips)
        card = {
            "data": (f"model.data.dialogue synthetic dyadic dialogue: {job.clips} clips (seeds 0-{job.clips - 1}), "
                     f"{frames} frames = {frames / DialogueConfig().fps / 60:.1f} min"),
            "stage": job.stage, "init": job.init, "steps": trainer.state.global_step,
            "losses": summary, "job": asdict(job),
            "training": {"learning_rate": args.learning_rate, "batch_size": args.per_device_train_batch_size,
                         "ranks": args.world_size, "seed": args.seed,
                         "deepspeed": Path(args.deepspeed).name if args.deepspeed else None},
            "command": "python -m model.train " + shlex.join(sys.argv[1:]),
        }
        result.save_pretrained(job.out, card=card)
        plot_loss(history, Path(job.out) / "loss.png", f"stage {job.stage}: {job.out}")
    return summary


def parse_arguments(argv: list[str]) -> tuple[SFTJobArguments, TrainingArguments]:
    """Both dataclasses; TRAINER_DEFAULTS fill what the command line leaves out. Inside a rank the
    DeepSpeed config is among the parsed arguments: building TrainingArguments sets up the
    process's distributed state, so it cannot be assigned afterwards."""
    job, _ = HfArgumentParser(SFTJobArguments).parse_args_into_dataclasses(argv, return_remaining_strings=True)
    given = {arg.split("=")[0].removeprefix("--") for arg in argv if arg.startswith("--")}
    extra = [f"--{name}={value}" for name, value in TRAINER_DEFAULTS.items() if name not in given]
    if "output_dir" not in given:
        extra += ["--output_dir", str(Path(job.out) / "checkpoints")]
    if under_launcher() and job.deepspeed_config and "deepspeed" not in given:
        extra += ["--deepspeed", job.deepspeed_config]
        if prepare_cpu_deepspeed_state():
            extra += ["--accelerator_config", json.dumps({"use_configured_state": True})]
    parser = HfArgumentParser((SFTJobArguments, TrainingArguments), prog="python -m model.train")
    return tuple(parser.parse_args_into_dataclasses(argv + extra))


def under_launcher() -> bool:
    """True inside a rank started by the deepspeed (or torchrun) launcher."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def prepare_cpu_deepspeed_state() -> bool:
    """On a machine without CUDA, set up Accelerate's DeepSpeed state over gloo; True when it did.

    Accelerate picks no backend for DeepSpeed on CPU and then counts one process per rank (each
    rank would train on all the data); built first with gloo, the state counts every rank and the
    TrainingArguments reuse it (``accelerator_config={"use_configured_state": true}``).
    alignment.reward uses it too.
    """
    if torch.cuda.is_available():
        return False
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    try:
        PartialState(backend="gloo")
    finally:
        del os.environ["ACCELERATE_USE_DEEPSPEED"]
    return True


def launch_command(argv: list[str], ranks: int) -> list[str]:
    """The `deepspeed` launcher command that runs this CLI on `ranks` processes of this machine."""
    launcher = Path(sys.executable).with_name("deepspeed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return [str(launcher) if launcher.exists() else "deepspeed", "--num_accelerators", str(ranks),
            "--master_port", str(port), "--no_local_rank", "--module", "model.train", *argv]


def main(argv: list[str] | None = None) -> int:
    """Run the stage here (one rank without DeepSpeed, or inside a launched rank), else fill the corpus
    cache and launch the ranks. Exit status 2: refused (bad arguments), nothing started."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        job, _ = HfArgumentParser(SFTJobArguments).parse_args_into_dataclasses(argv, return_remaining_strings=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if under_launcher() or job.zero_stage == 0:
        train(*parse_arguments(argv))
        return 0
    if job.corpus_cache:  # generated here once, so that the ranks only read it
        cached_clips(range(job.clips), load_codec("default"))
    return subprocess.call(launch_command(argv, job.ranks))
