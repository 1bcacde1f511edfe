"""python -m alignment.loop --out DIR [--rounds N] [--child_rounds N] [--focus DIM] ... (one flag per LoopConfig field).

Runs, or continues, one RLHF iteration in DIR (see alignment.loop); started again with the same
flags after a kill it goes on from the last completed stage. Exit 2: bad flags or a DIR that holds
a run with other settings; exit 1: the site or a job failed (the message says which).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields

from alignment.loop.config import LoopConfig
from alignment.loop.site import SiteError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m alignment.loop", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in fields(LoopConfig):
        kind = {"int": int, "float": float}.get(str(f.type), str)
        required = f.default is MISSING
        p.add_argument(f"--{f.name}", type=kind, required=required, help=f.metadata["help"],
                       **({} if required else {"default": f.default}))
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = LoopConfig(**vars(args))
        from alignment.loop.run import Loop

        loop = Loop(config)
    except ValueError as exc:
        print(f"python -m alignment.loop: {exc}", file=sys.stderr)
        return 2
    try:
        summary = loop.run()
    except SiteError as exc:
        print(f"python -m alignment.loop: {exc}", file=sys.stderr)
        return 1
    print(f"report: {config.out / 'report.md'}")
    for field, rate in summary["win_rates"]["2"].items():
        print(f"  {field:<10} child win rate {rate['rate']} [{rate['low']}, {rate['high']}] (n={rate['n']})")
    print(f"  KL to the parent: {summary['kl_to_parent']}")
    verdict = summary["claim"]
    print(f"  claim {'holds' if verdict['holds'] else 'fails'}: {summary['most_important']} "
          f"{'above' if verdict['beats_parent'] else 'not above'} 0.5; "
          f"past their margins: {', '.join(sorted(verdict['worse'])) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
