"""python -m alignment.bench SUBCOMMAND [options]: the alignment benchmarks.

Each subcommand is a module of this package exposing `add_arguments(parser)` and `run(args) -> int`;
add one by naming it in SUBCOMMANDS. ``reward``: reward-model training throughput against TRL; ``ppo``: PPO step throughput and time shares.
"""

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "reward": ("alignment.bench.reward", "reward-model training: pairs per second at 1 and 2 ranks vs TRL"),
    "ppo": ("alignment.bench.ppo", "PPO: steps per minute and rollout / scoring / learning shares at 1 and 2 ranks"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alignment.bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        modules[name] = importlib.import_module(module_name)
        modules[name].add_arguments(commands.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return modules[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
