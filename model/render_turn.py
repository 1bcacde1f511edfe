"""Render an agent's answer to a held-out corpus question as the MP4 an annotator would watch.

    python -m model.render_turn CHECKPOINT --out FILE.mp4 [--turn N] [--temperature T]
        [--visual-temperature T] [--top-k K] [--seed S] [--response-seconds S]

Why this exists: a table of metrics (model.evaluate) says how an agent behaves, but not what it
looks and sounds like. This command shows it: held-out turn N exactly as the evaluation samples
it (model.evaluate.heldout_turn: the question, its prompt, identity and scene objects), answered
by the responder the sampling workers run (model.respond: the agent's body rendered with the
scene, its voice mixed with the human's question on one track) and written by the workers' muxer
(model.media.write_mp4: H.264 + AAC). The same arguments give the same file.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from model.agent import SamplingParams
from model.codec import load_codec
from model.data.dialogue import DialogueClip
from model.evaluate import CheckpointError, heldout_clip, heldout_turn, open_checkpoint, sampling_params
from model.media import write_mp4
from model.respond import AgentResponse, Responder, ResponseConfig
from model.text import load_text_encoder


@dataclass(frozen=True)
class RenderConfig:
    """Which held-out turn, sampled how, rendered at what size."""

    turn: int = 0  # held-out turn index (corpus seed HELDOUT_SEED + turn)
    temperature: float = 1.0  # audio temperature; the visual one too unless visual_temperature is given
    visual_temperature: float | None = None
    top_k: int | None = None
    seed: int = 0  # the sampling seed
    diffusion_steps: int = 10  # SamplingParams' default: what a variant runs
    response: ResponseConfig = ResponseConfig()  # the workers' render: 640x360, 4 s after the question

    def __post_init__(self) -> None:
        if self.turn < 0:
            raise ValueError(f"held-out turn indices start at 0, got {self.turn}")
        self.params()  # validates the sampling settings

    def params(self) -> SamplingParams:
        return sampling_params(self.temperature, self.seed, visual_temperature=self.visual_temperature,
                               top_k=self.top_k, diffusion_steps=self.diffusion_steps)


@dataclass
class RenderedTurn:
    """The held-out clip whose question was asked, and the agent's response written to the MP4."""

    clip: DialogueClip
    response: AgentResponse


def render_turn(checkpoint: str, out: Path, config: RenderConfig = RenderConfig()) -> RenderedTurn:
    """Sample `checkpoint`'s answer to held-out turn `config.turn` and write it to `out` (MP4).

    CheckpointError: the checkpoint is missing, unreadable or built for another codec.
    """
    codec = load_codec("default")
    agent = open_checkpoint(checkpoint, codec)  # before the clip: a bad checkpoint fails in a second
    clip = heldout_clip(config.turn, codec)
    turn = heldout_turn(config.turn, codec, clip)
    responder = Responder(agent, codec, load_text_encoder("default"), config.response)
    response = responder.respond(turn.human_wave, turn.prompt, turn.identity, turn.objects, config.params())
    out.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(out, response.frames, response.fps, response.audio, response.sample_rate)
    return RenderedTurn(clip, response)


def main(argv: list[str] | None = None) -> RenderedTurn:
    defaults = RenderConfig()
    parser = argparse.ArgumentParser(prog="python -m model.render_turn", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="'default' or an agent checkpoint directory")
    parser.add_argument("--out", type=Path, required=True, help="the MP4 to write")
    parser.add_argument("--turn", type=int, default=defaults.turn, help="held-out turn index")
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--visual-temperature", type=float, default=None, help="default: --temperature")
    parser.add_argument("--top-k", type=int, default=None, help="sample from the k most likely codes (default: all)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--diffusion-steps", type=int, default=defaults.diffusion_steps)
    parser.add_argument("--response-seconds", type=float, default=defaults.response.response_seconds)
    parser.add_argument("--width", type=int, default=defaults.response.width)
    parser.add_argument("--height", type=int, default=defaults.response.height)
    args = parser.parse_args(argv)
    try:
        config = RenderConfig(turn=args.turn, temperature=args.temperature, visual_temperature=args.visual_temperature,
                              top_k=args.top_k, seed=args.seed, diffusion_steps=args.diffusion_steps,
                              response=ResponseConfig(response_seconds=args.response_seconds, width=args.width,
                                                      height=args.height))
    except ValueError as exc:
        parser.error(str(exc))
    try:
        rendered = render_turn(args.checkpoint, args.out, config)
    except CheckpointError as exc:
        parser.error(str(exc))
    clip, response = rendered.clip, rendered.response
    print(f"turn {config.turn} ({clip.kind}): {clip.question!r} -> expected {clip.answer!r}; prompt {clip.prompt!r}"
          + (f", {len(clip.objects)} scene object(s)" if clip.objects else ""))
    print(f"wrote {args.out}: {response.duration_seconds:.2f} s, {response.frames.shape[2]}x{response.frames.shape[1]} "
          f"at {response.fps:g} fps (sampled in {response.sample_seconds:.1f} s, rendered in "
          f"{response.render_seconds:.1f} s)")
    return rendered


if __name__ == "__main__":
    main()
