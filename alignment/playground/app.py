"""The playground's Gradio UI: up to four agents, one turn, clips side by side with metrics and rewards.

Sampling runs in this process (engine); the UI only turns widgets into engine calls and results
into videos and tables. Every engine `PlaygroundError` becomes a `gr.Error`: a readable message in
the app, never a traceback.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from alignment.playground import engine
from model.agent import SamplingParams
from model.evaluate import HELDOUT_SEED, MOTION_REFERENCE_CLIPS, load_kit
from model.respond import ResponseConfig

MAX_AGENTS = 4
CORPUS_QUESTIONS = 8  # held-out corpus turns offered in the question list
REPO_ROOT = Path(__file__).resolve().parents[2]
# Plays every clip from the start at once: the browser's own players, started together.
PLAY_ALL_JS = """() => { const vs = [...document.querySelectorAll('#clips video')];
  vs.forEach(v => { v.pause(); v.currentTime = 0; }); vs.forEach(v => v.play()); }"""


@dataclass(frozen=True)
class PlaygroundConfig:
    """What the playground may open and how it renders."""

    roots: tuple[Path, ...] = (REPO_ROOT / "model" / "assets",)  # checkpoint directories must lie under one
    variants: tuple[dict, ...] = ()  # registered variants, as exported by the site's API
    out_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "her-playground")
    response: ResponseConfig = ResponseConfig(width=320, height=180)
    motion_reference_clips: int = MOTION_REFERENCE_CLIPS  # corpus clips behind motion/frechet


def read_variants(path: Path) -> tuple[dict, ...]:
    """Registered variants from an exported JSON list ([{"name", "checkpoint", sampling fields...}])."""
    data = json.loads(Path(path).read_text())
    items = data.get("results", data) if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(v, dict) and "name" in v and "checkpoint" in v for v in items):
        raise ValueError(f"{path}: expected a list of variants with 'name' and 'checkpoint'")
    return tuple(items)


def build_app(config: PlaygroundConfig = PlaygroundConfig()) -> gr.Blocks:
    variants = {v["name"]: v for v in config.variants}
    questions = [f"{i}: held-out corpus clip {HELDOUT_SEED + i}" for i in range(CORPUS_QUESTIONS)]

    with gr.Blocks(title="Her playground") as app:
        gr.Markdown("# Agent playground\nSampling runs in this process (no workers). Choose agents, give a turn, "
                    "sample; clips play side by side.")
        slots = []
        with gr.Row():
            for i in range(MAX_AGENTS):
                with gr.Column(min_width=220):
                    use = gr.Checkbox(value=i < 2, label=f"Agent {i + 1}")
                    preset = gr.Dropdown(["(custom)", *variants], value="(custom)", label="Registered variant")
                    checkpoint = gr.Textbox(value="default", label="Checkpoint ('default' or a directory)")
                    audio_t = gr.Number(value=1.0 if i else 0.7, label="Audio temperature")
                    visual_t = gr.Number(value=1.0 if i else 0.7, label="Visual temperature")
                    top_k = gr.Number(value=0, precision=0, label="Top-k (0: all)")
                    steps = gr.Number(value=10, precision=0, label="Diffusion steps")
                    seed = gr.Number(value=i, precision=0, label="Seed")
                    preset.change(lambda name: variant_settings(variants, name), preset,
                                  [checkpoint, audio_t, visual_t, top_k, steps])
                    slots.append([use, checkpoint, audio_t, visual_t, top_k, steps, seed])
        with gr.Row():
            with gr.Column():
                source = gr.Radio(["clip", "corpus question"], value="clip", label="Turn")
                clip = gr.Video(sources=["upload", "webcam"], include_audio=True,
                                label="Record (microphone + webcam) or upload a clip")
                question = gr.Dropdown(questions, value=questions[0], label="Held-out corpus question")
            with gr.Column():
                prompt = gr.Textbox(value="answer the question", label="Agent prompt (recorded/uploaded turns)")
                identity = gr.Number(value=0, precision=0, label="Identity")
                response_s = gr.Number(value=config.response.response_seconds, label="Response seconds")
                reward = gr.Textbox(value="", label="Reward model checkpoint (optional)")
        with gr.Row():
            run = gr.Button("Sample", variant="primary")
            play = gr.Button("Play all together")
        videos, tables, files = [], [], []
        with gr.Row(elem_id="clips"):
            for i in range(MAX_AGENTS):
                with gr.Column(min_width=220):
                    videos.append(gr.Video(label=f"Agent {i + 1}", interactive=False))
                    tables.append(gr.JSON(label="Metrics", open=True))
                    files.append(gr.File(label="Rollout + MP4", file_count="multiple", interactive=False))

        def sample_all(*values, progress=gr.Progress()):
            return _sample_all(config, values, progress)

        inputs = [c for slot in slots for c in slot] + [source, clip, question, prompt, identity, response_s, reward]
        run.click(sample_all, inputs, videos + tables + files, api_name="sample")
        play.click(None, js=PLAY_ALL_JS)
    return app


def variant_settings(variants: dict, name: str) -> list:
    """A registered variant's checkpoint and sampling settings, in the slot's widget order."""
    v = variants.get(name)
    if v is None:
        return [gr.update()] * 5
    return [v["checkpoint"], v.get("audio_temperature", 1.0), v.get("visual_temperature", 1.0),
            v.get("top_k") or 0, v.get("diffusion_steps", 10)]


def _params(audio_t, visual_t, top_k, steps, seed) -> SamplingParams:
    try:
        return SamplingParams(audio_temperature=float(audio_t), visual_temperature=float(visual_t),
                              top_k=int(top_k) or None, diffusion_steps=int(steps), seed=int(seed))
    except (TypeError, ValueError) as exc:
        raise engine.PlaygroundError(f"Bad sampling parameters: {exc}") from exc


def _sample_all(config: PlaygroundConfig, values: tuple, progress: gr.Progress) -> list:
    width = 7
    slots = [values[i * width:(i + 1) * width] for i in range(MAX_AGENTS)]
    source, clip, question, prompt, identity, response_s, reward_path = values[MAX_AGENTS * width:]
    try:
        chosen = [(i, s) for i, s in enumerate(slots) if s[0]]
        if not chosen:
            raise engine.PlaygroundError("Choose at least one agent.")
        progress(0, desc="loading")
        kit = load_kit(config.motion_reference_clips)
        if not (isinstance(response_s, int | float) and math.isfinite(response_s) and response_s > 0):
            raise engine.PlaygroundError("Response seconds must be a number > 0.")
        response = ResponseConfig(response_seconds=float(response_s), width=config.response.width,
                                  height=config.response.height)
        if source == "corpus question":
            turn = engine.corpus_turn(int(str(question).split(":")[0]), kit)
        else:
            if not clip:
                raise engine.PlaygroundError("Record or upload a clip first (or choose a corpus question).")
            turn = engine.uploaded_turn(_path(clip), kit, str(prompt), int(identity or 0))
        agents = [(i, engine.open_agent(str(s[1]), config.roots, kit), _params(*s[2:])) for i, s in chosen]
        reward = (engine.open_reward(reward_path, config.roots, [a.config for _, a, _ in agents])
                  if str(reward_path or "").strip() else None)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=_mkdir(config.out_dir)))
        out = [None] * (3 * MAX_AGENTS)
        for n, (i, agent, params) in enumerate(agents):
            def tick(fraction, n=n, i=i):
                progress((n + fraction) / len(agents), desc=f"sampling agent {i + 1}")
            result = engine.sample(agent, turn, params, kit, response, tick)
            if reward is not None:
                result.rewards = engine.reward_scores(reward, result.response)
            video, rollout = engine.save_sample(result, run_dir / f"agent{i + 1}")
            out[i] = str(video)
            out[MAX_AGENTS + i] = _table(result)
            out[2 * MAX_AGENTS + i] = [str(video), str(rollout)]
        progress(1.0, desc="done")
        return out
    except engine.PlaygroundError as exc:
        raise gr.Error(str(exc)) from exc


def _path(value) -> str:
    """The file path of a gr.Video input value (a path; a {"video": {"path"}} dict in older releases)."""
    if isinstance(value, dict):
        value = value["video"]["path"] if isinstance(value.get("video"), dict) else value.get("path")
    return str(value)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _table(result: engine.Sample) -> dict:
    """What shows under a clip: duration, every metric (None: does not apply), transcripts, rewards."""
    table = {"duration_s": result.response.duration_seconds,
             "metrics": {k: (None if math.isnan(v) else v) for k, v in sorted(result.metrics.items())},
             "heard": result.transcripts}
    if result.rewards is not None:
        table["reward"] = result.rewards
    return table
