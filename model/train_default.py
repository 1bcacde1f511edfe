"""The shipped default agent's recipe: both stages of ``python -m model.train``, then model.evaluate.

    python -m model.train_default --out DIR               # the recipe: ~45 min of training on 2 CPU cores
    python -m model.train_default --out DIR --card_only   # only (re)assemble DIR from what is there

Why a thin caller: the two-stage Trainer + DeepSpeed recipe (model/train/sft.py) is the one way
agents are trained; this module only fixes the default agent's flags, runs the two commands in
order (their own tqdm progress, their own checkpoints and ``--resume``), evaluates stage 2 and
puts one agent directory together, so the shipped agent's card says exactly how to make it again.

DIR receives stage1/ and stage2/ (each ``python -m model.train``'s OUT), evaluation/ (table.json,
table.png, rollouts) and the agent itself: config.json and model.safetensors (stage 2's, byte for
byte), loss_stage1.png, loss_stage2.png, evaluation.png, card.json (data, both stages' steps,
first and last losses and commands, this recipe's command, the evaluation table) and README.md
(the same, the table in Markdown). Started again with the same flags it continues: a stage whose
model.safetensors exists is not rerun, an unfinished one resumes from its last Trainer checkpoint,
and an evaluation of the current stage-2 weights with the same settings is kept.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from transformers import HfArgumentParser

from model.agent.checkpoint import CARD_FILE, CONFIG_FILE, README_FILE, WEIGHTS_FILE
from model.evaluate import EvaluationConfig, evaluate
from model.train.sft import TRAINER_DEFAULTS

# The recipe's fixed part (issue 11; ARCHITECTURE.md, turn-taking of the default agent).
TURN_BUCKETS = 40  # the turn feature counts quiet frames up to 1.7 s, past the corpus's longest pause (1.4 s)
SCENE_OBJECTS = 2  # the scene input: the demo's cup and the one object a clip may add
TURN_WEIGHT = 4.0  # the recipe's choice: short fine-tunes at 10 did not move the onset; this run is the full-length test
# The onset-hazard loss, both stages: 300-step fine-tunes at 20 cut the chance of starting during the
# human's turn on held-out clips 0-5 from 0.26 to 0.07 (ARCHITECTURE.md); stage 2 trains the audio too.
HAZARD_WEIGHT = 20.0
LOGGING_STEPS = int(TRAINER_DEFAULTS["logging_steps"])  # model.train's own; a flag only for tiny runs


class RecipeError(ValueError):
    """DIR holds something this recipe did not make, or lacks what --card_only needs."""


@dataclass(frozen=True)
class RecipeConfig:
    """The default agent's recipe; every flag only scales it (tests run it tiny)."""

    out: str = field(metadata={"help": "directory of the agent; stage1/, stage2/ and evaluation/ go inside"})
    clips: int = field(default=320, metadata={"help": "training clips (corpus seeds 0 .. clips - 1), both stages"})
    stage1_steps: int = field(default=2500, metadata={"help": "optimizer steps of stage 1 (audio)"})
    stage2_steps: int = field(default=2500, metadata={"help": "optimizer steps of stage 2 (audiovisual)"})
    # A Trainer checkpoint every ~7 min at 2 ranks: an interrupted stage loses little. Saving never
    # changes the weights; it is a flag so a card can name the exact command a stage ran.
    stage1_save_steps: int = field(default=500, metadata={"help": "steps per Trainer checkpoint of stage 1"})
    stage2_save_steps: int = field(default=500, metadata={"help": "steps per Trainer checkpoint of stage 2"})
    ranks: int = field(default=2, metadata={"help": "DeepSpeed CPU ranks of each stage (1 or 2)"})
    logging_steps: int = field(default=LOGGING_STEPS, metadata={"help": "steps per logged loss (passed to "
                                                                        "model.train only when not its default)"})
    eval_samples: int = field(default=EvaluationConfig.samples,
                              metadata={"help": "held-out turns per column of the evaluation"})
    skip_eval: bool = field(default=False, metadata={"help": "train and assemble, without the evaluation"})
    card_only: bool = field(default=False, metadata={"help": "neither train nor evaluate: write DIR's agent, "
                                                             "card and README from DIR/stage1, DIR/stage2 and "
                                                             "DIR/evaluation/table.json (when there)"})

    def __post_init__(self) -> None:
        counts = {name: getattr(self, name) for name in ("clips", "stage1_steps", "stage2_steps", "stage1_save_steps",
                                                         "stage2_save_steps", "logging_steps", "eval_samples")}
        if min(counts.values()) < 1:
            raise ValueError(f"{', '.join(counts)} must be >= 1, got {', '.join(map(str, counts.values()))}")
        if not 1 <= self.ranks <= 2:
            raise ValueError(f"ranks must be 1 or 2 (CPU ranks), got {self.ranks}")

    @property
    def directory(self) -> Path:
        return Path(self.out)

    def stage_arguments(self) -> dict[str, list[str]]:
        """Each stage's ``python -m model.train`` arguments, stage1 first."""
        stage1, stage2 = str(self.directory / "stage1"), str(self.directory / "stage2")
        common = ["--clips", str(self.clips)]
        tail = ["--ranks", str(self.ranks)]
        hazard = ["--hazard_weight", f"{HAZARD_WEIGHT:g}"]
        logging = [] if self.logging_steps == LOGGING_STEPS else ["--logging_steps", str(self.logging_steps)]
        return {
            "stage1": ["--stage", "audio", "--out", stage1, *common, "--turn_buckets", str(TURN_BUCKETS),
                       "--scene_objects", str(SCENE_OBJECTS), "--turn_weight", f"{TURN_WEIGHT:g}", *hazard, *tail,
                       "--max_steps", str(self.stage1_steps), "--save_steps", str(self.stage1_save_steps), "--resume", "True",
                       *logging],
            "stage2": ["--stage", "audiovisual", "--init", stage1, "--out", stage2, *common,
                       "--turn_weight", f"{TURN_WEIGHT:g}", *hazard, *tail, "--max_steps", str(self.stage2_steps),
                       "--save_steps", str(self.stage2_save_steps), "--resume", "True", *logging],
        }

    def evaluation_config(self) -> EvaluationConfig:
        return EvaluationConfig(samples=self.eval_samples)  # temperatures 0.7 and 1.0

    def command(self) -> str:
        """The command that makes this agent: the flags that differ from the recipe's defaults."""
        words = ["python", "-m", "model.train_default", "--out", self.out]
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name in ("out", "card_only") or value == spec.default:
                continue
            words += [f"--{spec.name}"] if value is True else [f"--{spec.name}", str(value)]
        return shlex.join(words)


def stage_command(arguments: list[str]) -> str:
    """How model.train records a stage's command on its card."""
    return "python -m model.train " + shlex.join(arguments)


def finished_stage(directory: Path, arguments: list[str]) -> dict | None:
    """The card of a finished stage (its model.safetensors written), None if it is unfinished;
    RecipeError when it was trained by another command."""
    if not (directory / WEIGHTS_FILE).is_file():
        return None
    card = json.loads((directory / CARD_FILE).read_text())
    if card.get("command") != stage_command(arguments):
        raise RecipeError(f"{directory} was trained by {card.get('command')!r}, not by this recipe's "
                          f"{stage_command(arguments)!r}: remove it or pass the flags it was made with")
    return card


def run_stages(config: RecipeConfig) -> None:
    """Run each unfinished stage's command, progress and all, in order; CalledProcessError if one fails.
    Both stages are checked before anything runs: a stage 2 finished on an unfinished stage 1 is refused."""
    stages = config.stage_arguments()
    done = {name: finished_stage(config.directory / name, arguments) is not None for name, arguments in stages.items()}
    if done["stage2"] and not done["stage1"]:
        raise RecipeError(f"{config.directory / 'stage2'} is finished but the stage 1 it started from is not: "
                          "remove it")
    for name, arguments in stages.items():
        if done[name]:
            print(f"{name}: finished earlier ({config.directory / name / WEIGHTS_FILE}), not rerun", flush=True)
            continue
        print(f"{name}: {stage_command(arguments)}", flush=True)
        subprocess.run([sys.executable, "-m", "model.train", *arguments], check=True)


def current_evaluation(config: RecipeConfig) -> dict | None:
    """DIR/evaluation/table.json when it evaluates the current stage-2 weights with this config's settings."""
    table = config.directory / "evaluation" / "table.json"
    weights = config.directory / "stage2" / WEIGHTS_FILE
    if not table.is_file() or table.stat().st_mtime < weights.stat().st_mtime:
        return None
    report = json.loads(table.read_text())
    same_settings = report["config"] == json.loads(json.dumps(asdict(config.evaluation_config())))
    return report if same_settings and _same_path(report["checkpoint"], config.directory / "stage2") else None


def run_evaluation(config: RecipeConfig) -> dict:
    """model.evaluate's table for stage 2 (kept from an earlier run when it is current)."""
    report = current_evaluation(config)
    if report is not None:
        print(f"evaluation: kept {config.directory / 'evaluation' / 'table.json'}", flush=True)
        return report
    evaluation = evaluate(str(config.directory / "stage2"), config.evaluation_config(),
                          out=config.directory / "evaluation")
    return evaluation.to_json()


def finished_stages(config: RecipeConfig) -> dict[str, dict]:
    """Both stages' cards; RecipeError if one is unfinished or was made by another command."""
    stages = {}
    for name, arguments in config.stage_arguments().items():
        card = finished_stage(config.directory / name, arguments)
        if card is None:
            raise RecipeError(f"{config.directory / name} is not finished (no {WEIGHTS_FILE}): run the recipe first")
        stages[name] = card
    return stages


def stored_evaluation(config: RecipeConfig) -> dict | None:
    """For --card_only: DIR/evaluation/table.json if there; RecipeError if it is not stage 2's current one."""
    table = config.directory / "evaluation" / "table.json"
    if not table.is_file():
        return None
    report = json.loads(table.read_text())
    if not _same_path(report["checkpoint"], config.directory / "stage2"):
        raise RecipeError(f"{table} evaluates {report['checkpoint']!r}, not {config.directory / 'stage2'}")
    if table.stat().st_mtime < (config.directory / "stage2" / WEIGHTS_FILE).stat().st_mtime:
        raise RecipeError(f"{table} is older than the stage-2 weights: evaluate them again")
    return report


def build_card(config: RecipeConfig, stages: dict[str, dict], report: dict | None) -> dict:
    """The agent's card from both stage cards and the evaluation report (None: not evaluated)."""
    if stages["stage1"]["data"] != stages["stage2"]["data"]:
        raise RecipeError(f"the stages trained on different data: {stages['stage1']['data']!r} and "
                          f"{stages['stage2']['data']!r}")
    evaluation = None
    if report is not None:
        evaluation = {key: report[key] for key in ("checkpoint", "config", "columns", "table")}
        evaluation["metrics"] = list(report["table"])  # the table's row order: card.json sorts its keys
        config = RecipeConfig(**{**asdict(config), "eval_samples": report["config"]["samples"]})
    elif not config.skip_eval:
        config = RecipeConfig(**{**asdict(config), "skip_eval": True})
    last = stages["stage2"]["losses"]["last"]
    return {
        "data": stages["stage2"]["data"],
        "steps": sum(card["steps"] for card in stages.values()),
        "metrics": {name: round(last[name], 4) for name in ("loss/audio", "loss/diffusion") if name in last},
        "stages": {name: {"stage": card["stage"], "init": card["init"], "steps": card["steps"],
                          "losses": {end: _losses(card["losses"][end]) for end in ("first", "last")},
                          "training": card["training"], "command": card["command"]}
                   for name, card in stages.items()},
        "command": config.command(),
        "evaluation": evaluation,
    }


def evaluation_markdown(evaluation: dict) -> str:
    """The card's evaluation (or model.evaluate's table.json) as Markdown: one row per metric, in
    ``metrics`` order when given, one column per agent@temperature and corpus column ("n/a": the
    metric applies to none of the column's exchanges).

    >>> print(evaluation_markdown({"columns": ["checkpoint@1", "corpus"],
    ...                            "table": {"turn/response_rate": {"checkpoint@1": 0.5, "corpus": None}}}))
    | metric | checkpoint@1 | corpus |
    |---|---:|---:|
    | turn/response_rate | 0.500 | n/a |
    """
    columns = evaluation["columns"]
    lines = ["| metric | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for metric in evaluation.get("metrics", list(evaluation["table"])):
        row = evaluation["table"][metric]
        cells = ["n/a" if row[c] is None or math.isnan(row[c]) else f"{row[c]:.3f}" for c in columns]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme(card: dict) -> str:
    """README.md beside the checkpoint: the card in prose, the evaluation as a Markdown table."""
    lines = ["# Default agent", "", f"Made by `{card['command']}`: two stages of `python -m model.train` (HF Trainer, "
             "DeepSpeed ZeRO-2), stage 2 starting from stage 1; the weights here are stage 2's.", "",
             f"- data: {card['data']}"]
    for name, stage in card["stages"].items():
        lines.append(f"- {name} ({stage['stage']}, from `{stage['init']}`): {stage['steps']} steps, "
                     f"{_loss_text(stage['losses'])}; `{stage['command']}`")
    lines += ["", "![stage 1 loss](loss_stage1.png) ![stage 2 loss](loss_stage2.png)", "", "## Evaluation", ""]
    evaluation = card["evaluation"]
    if evaluation is None:
        lines.append("Not evaluated (`--skip_eval`); `python -m model.evaluate CHECKPOINT` makes the table.")
    else:
        settings = evaluation["config"]
        lines += [f"`python -m model.evaluate` on {settings['samples']} held-out turns per column, temperatures "
                  f"{', '.join(f'{t:g}' for t in settings['temperatures'])}, sampling seeds from {settings['seed']}; "
                  "`random`: a freshly initialised agent of the same configuration; `corpus`, `corpus_codec`: "
                  "the held-out clips themselves and their codec round trip (the ceilings).", "",
                  evaluation_markdown(evaluation), "", "![evaluation](evaluation.png)"]
    lines += ["", f"Weights: `{WEIGHTS_FILE}` (safetensors); configuration: `{CONFIG_FILE}`; card: `{CARD_FILE}`.", ""]
    return "\n".join(lines)


def _loss_text(losses: dict) -> str:
    first, last = losses["first"], losses["last"]
    if "loss" not in first:
        return "no loss logged (fewer steps than logging_steps)"
    return f"loss {first['loss']:.4f} at step {first['step']} -> {last['loss']:.4f} at step {last['step']}"


def assemble(config: RecipeConfig, stages: dict[str, dict], report: dict | None) -> Path:
    """Write DIR's agent (stage 2's files), both loss curves, the evaluation chart, card.json and README.md."""
    directory = config.directory
    card = build_card(config, stages, report)
    for source, target in ((f"stage2/{CONFIG_FILE}", CONFIG_FILE), (f"stage2/{WEIGHTS_FILE}", WEIGHTS_FILE),
                           ("stage1/loss.png", "loss_stage1.png"), ("stage2/loss.png", "loss_stage2.png")):
        shutil.copyfile(directory / source, directory / target)
    if report is not None:
        shutil.copyfile(directory / "evaluation" / "table.png", directory / "evaluation.png")
    else:
        (directory / "evaluation.png").unlink(missing_ok=True)
    (directory / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    (directory / README_FILE).write_text(readme(card))
    return directory


def run(config: RecipeConfig) -> Path:
    """The whole recipe (or, with card_only, only its last step)."""
    if config.card_only:
        stages = finished_stages(config)
        return assemble(config, stages, stored_evaluation(config))
    config.directory.mkdir(parents=True, exist_ok=True)
    run_stages(config)
    stages = finished_stages(config)
    return assemble(config, stages, None if config.skip_eval else run_evaluation(config))


def _losses(line: dict) -> dict:
    """A logged line's step and losses (not its learning rate, gradient norm or epoch)."""
    return {k: v for k, v in line.items() if k == "step" or k == "loss" or k.startswith("loss/")}


def _same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def main(argv: list[str] | None = None) -> int:
    """Exit status 2: refused (bad flags, or DIR holds another recipe's stages), nothing changed;
    a failed stage's own exit status otherwise."""
    parser = HfArgumentParser(RecipeConfig, prog="python -m model.train_default",
                              description=__doc__.split("\n\n")[0])
    try:
        (config,) = parser.parse_args_into_dataclasses(sys.argv[1:] if argv is None else argv)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        path = run(config)
    except RecipeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"error: {shlex.join(error.cmd)} exited with {error.returncode}", file=sys.stderr)
        return error.returncode
    print(f"wrote {path}: {path / CARD_FILE}, {path / README_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
