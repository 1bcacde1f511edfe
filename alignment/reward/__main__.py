"""python -m alignment.reward --snapshot DIR --base CKPT --out DIR [--ranks N] [--zero_stage 2] [Trainer flags]

Checks the run first (`preflight`: nothing starts on a bad snapshot, base or reward model), then
trains: in this process with one rank and no DeepSpeed (``--zero_stage 0``), else through the
`deepspeed` launcher on ``--ranks`` processes (ZeRO-2 by default). Progress shows as tqdm bars;
metrics go to OUT/metrics.jsonl and the curves to OUT/curves.png. Exit status 2 means refused.
"""

import json
import subprocess
import sys

from transformers import HfArgumentParser

from alignment.reward.config import RewardConfig, RewardJobArguments
from alignment.reward.train import (
    RunRefused,
    launch_command,
    preflight,
    train,
    under_launcher,
)
from model.train.sft import prepare_cpu_deepspeed_state


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        job, config = parse_arguments(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if under_launcher() or job.zero_stage == 0:
            train(job, config)
            return 0
        plan = preflight(job)
    except RunRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(f"snapshot {plan.snapshot.sha256[:12]}: {len(plan.train)} training and {len(plan.validation)} "
          f"validation pairs; heads overall + {list(plan.dimensions)}; {job.ranks} rank(s), ZeRO-{job.zero_stage}",
          flush=True)
    return subprocess.call(launch_command(argv, job.ranks))


def parse_arguments(argv: list[str]) -> tuple[RewardJobArguments, RewardConfig]:
    """Both dataclasses from the command line; inside a rank, with --output_dir and the DeepSpeed config.

    TrainingArguments sets up the distributed state when it is built, so the DeepSpeed config must be
    among the parsed arguments, not assigned afterwards.
    """
    # TrainingArguments is built once only: building one sets up the process's distributed state.
    job, _ = HfArgumentParser(RewardJobArguments).parse_args_into_dataclasses(argv, return_remaining_strings=True)
    extra = []
    if "--output_dir" not in argv:
        extra += ["--output_dir", job.out]
    if under_launcher() and job.deepspeed_config and "--deepspeed" not in argv:
        extra += ["--deepspeed", job.deepspeed_config]
        if prepare_cpu_deepspeed_state():
            extra += ["--accelerator_config", json.dumps({"use_configured_state": True})]
    parser = HfArgumentParser((RewardJobArguments, RewardConfig), prog="python -m alignment.reward")
    return tuple(parser.parse_args_into_dataclasses(argv + extra))

if __name__ == "__main__":
    sys.exit(main())
