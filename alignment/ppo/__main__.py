"""python -m alignment.ppo --output_dir DIR --reward_model RM [--policy CKPT] [--snapshot DIR] [--ranks N] ...

Checks the run first (`alignment.ppo.run.preflight`: a reward model on another backbone, a snapshot
without prompts or a missing policy is refused before any rank starts, exit status 2), then trains:
in this process for one rank, else through the `deepspeed` launcher on `--ranks` processes. A run
whose output directory holds a checkpoint resumes from it. Progress shows as a tqdm bar; metrics
go to DIR/metrics.jsonl, curves to DIR/curves.png, the trained policy to DIR/policy.
"""

import subprocess
import sys

from transformers import HfArgumentParser

from alignment.ppo.ppo_config import PPOConfig
from alignment.ppo.run import RunRefused, launch_command, preflight, run_rank, under_launcher


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = HfArgumentParser(PPOConfig, prog="python -m alignment.ppo")
    try:
        (config,) = parser.parse_args_into_dataclasses(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if under_launcher():
            run_rank(config)
            return 0
        plan = preflight(config)
    except RunRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(f"PPO of {config.policy} against {config.reward_model}: prompts from {plan.prompt_source}; "
          f"{config.total_steps} steps x {config.batch_size} rollouts x {config.ranks} rank(s)", flush=True)
    if config.ranks == 1:
        run_rank(config)
        return 0
    return subprocess.call(launch_command(argv, config.ranks))


if __name__ == "__main__":
    sys.exit(main())
