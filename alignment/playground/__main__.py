"""``python -m alignment.playground [--port 7861] [--root DIR ...] [--variants FILE]``: the Gradio playground.

Sampling runs in this process: the agents are loaded and sampled here, no worker or broker is involved.
"""

import argparse
from pathlib import Path

from alignment.playground.app import PlaygroundConfig, build_app, read_variants


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--root", action="append", type=Path, default=[],
                        help="a directory checkpoints may be opened from (repeatable; model/assets always)")
    parser.add_argument("--variants", type=Path, help="registered variants exported as JSON (the API's /variants list)")
    parser.add_argument("--out", type=Path, help="where samples (MP4 + rollout) are saved")
    parser.add_argument("--motion-reference-clips", type=int, default=PlaygroundConfig.motion_reference_clips,
                        help="held-out corpus clips the motion Frechet distance is measured against")
    args = parser.parse_args(argv)
    if args.motion_reference_clips < 1:
        parser.error("--motion-reference-clips must be >= 1")
    try:
        variants = read_variants(args.variants) if args.variants else ()
    except (OSError, ValueError) as exc:
        parser.error(f"--variants: {exc}")
    base = PlaygroundConfig()
    config = PlaygroundConfig(roots=(*base.roots, *args.root),
                              variants=variants,
                              out_dir=args.out or base.out_dir, motion_reference_clips=args.motion_reference_clips)
    build_app(config).queue().launch(server_name=args.host, server_port=args.port,
                                     allowed_paths=[str(config.out_dir)])


if __name__ == "__main__":
    main()
