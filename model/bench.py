"""Benchmark of the agent's streaming sampler: is it faster than real time, and what does the cache buy?

    python -m model.bench [--model tiny] [--threads 1] [--seconds 10] [--json out.json]

Measures, in one run on the same model: frames generated per second by a KV-cached session from
scratch over `seconds` of video (audio tokens and diffusion sampling included), the real-time
factor at the model's frame rate, the per-frame latency, and the time per frame at `seconds` of
context with the cache and with the no-cache baseline (the same session recomputing the whole
sequence at every backbone call).
"""

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from model.agent import AgentBatch, AgentModel, SamplingParams, StreamingSession


@dataclass
class BenchConfig:
    model: str = "tiny"  # a configuration name or a checkpoint directory; weights don't change speed
    threads: int = 1  # torch threads; 1 is the worst case a laptop worker sees
    seconds: float = 10.0  # video generated from scratch, and the context of the cache comparison
    context_frames: int = 24  # cached frames timed at full context (one second)
    baseline_frames: int = 3  # no-cache frames timed at full context; each reruns the whole sequence
    diffusion_steps: int = 10  # the default variant's denoising steps
    seed: int = 0  # seeds the random human inputs and the sampler


def _human_frame(human: AgentBatch, i: int, r: int) -> dict:
    """The session inputs of frame i: the human's frame i - 1 and frame i's trajectory."""
    return {
        "human_audio": None if i == 0 else human.human_audio[0, :, (i - 1) * r : i * r],
        "human_visual": None if i == 0 else human.human_visual[0, i - 1],
        "trajectory": human.trajectory[0, i],
    }


def _time_frames(session: StreamingSession, human: AgentBatch, count: int, desc: str) -> tuple[list[float], float]:
    """Wall-clock seconds of each step, and the CPU seconds this thread spent on all of them.

    On a shared machine the two differ: CPU time says what a dedicated core would do.
    """
    r = session.config.audio_frames_per_video_frame
    times, cpu = [], 0.0
    for _ in tqdm(range(count), desc=desc, unit="frame", leave=False):
        inputs = _human_frame(human, session.num_frames, r)
        start, start_cpu = time.perf_counter(), time.thread_time()
        session.step(**inputs)
        times.append(time.perf_counter() - start)
        cpu += time.thread_time() - start_cpu
    return times, cpu


def run_benchmark(config: BenchConfig) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _measure(config)
    finally:
        torch.set_num_threads(threads)  # callers (tests, notebooks) keep their own setting


def _measure(config: BenchConfig) -> dict:
    model = AgentModel.from_pretrained(config.model).eval()
    c = model.config
    frames = max(1, round(config.seconds * c.fps))
    extra = config.context_frames + config.baseline_frames
    human = AgentBatch.random(c, 1, frames + extra, torch.Generator().manual_seed(config.seed))
    params = SamplingParams(diffusion_steps=config.diffusion_steps, seed=config.seed)

    session = model.session(params, prompt=human.prompt[0], identity=int(human.identity[0]))
    start = time.perf_counter()
    latencies, cpu_seconds = _time_frames(session, human, frames, "streaming from scratch")
    fps = frames / (time.perf_counter() - start)
    context = session.rollout()

    # Both paths continue the same context; only the cache differs.
    cached = StreamingSession.from_rollout(model, context, params)
    cached_times, _ = _time_frames(cached, human, config.context_frames, "cached at full context")
    uncached = StreamingSession.from_rollout(model, context, params, use_cache=False)
    uncached_times, _ = _time_frames(uncached, human, config.baseline_frames, "no cache at full context")
    cached_ms = 1e3 * statistics.mean(cached_times)
    uncached_ms = 1e3 * statistics.mean(uncached_times)
    latencies_ms = sorted(1e3 * t for t in latencies)
    return {
        "model": config.model,
        "threads": config.threads,
        "diffusion_steps": config.diffusion_steps,
        "parameters": sum(p.numel() for p in model.parameters()),
        "frames": frames,
        "frames_per_second": fps,
        "real_time_factor": fps / c.fps,
        "frames_per_cpu_second": frames / cpu_seconds,
        "latency_ms_p50": latencies_ms[len(latencies_ms) // 2],
        "latency_ms_p95": latencies_ms[min(len(latencies_ms) - 1, int(0.95 * len(latencies_ms)))],
        "latency_ms_max": latencies_ms[-1],
        "context_seconds": frames / c.fps,
        "cached_ms_per_frame_at_context": cached_ms,
        "uncached_ms_per_frame_at_context": uncached_ms,
        "cache_speedup": uncached_ms / cached_ms,
    }


def format_table(result: dict) -> str:
    rows = [
        ("model", f"{result['model']} ({result['parameters'] / 1e6:.1f} M parameters)"),
        ("threads / diffusion steps", f"{result['threads']} / {result['diffusion_steps']}"),
        (f"frames/s over {result['frames']} frames", f"{result['frames_per_second']:.1f}"),
        ("real-time factor", f"{result['real_time_factor']:.2f}x"),
        ("frames per CPU second (this thread)", f"{result['frames_per_cpu_second']:.1f}"),
        ("latency p50 / p95 / max", f"{result['latency_ms_p50']:.1f} / {result['latency_ms_p95']:.1f} / "
                                    f"{result['latency_ms_max']:.1f} ms"),
        (f"cached frame at {result['context_seconds']:.0f} s context", f"{result['cached_ms_per_frame_at_context']:.1f} ms"),
        (f"no-cache frame at {result['context_seconds']:.0f} s context", f"{result['uncached_ms_per_frame_at_context']:.1f} ms"),
        ("cache speed-up", f"{result['cache_speedup']:.1f}x"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> dict:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=defaults.model, help="configuration name or checkpoint directory")
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--context-frames", type=int, default=defaults.context_frames)
    parser.add_argument("--baseline-frames", type=int, default=defaults.baseline_frames)
    parser.add_argument("--diffusion-steps", type=int, default=defaults.diffusion_steps)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    result = run_benchmark(BenchConfig(
        model=args.model, threads=args.threads, seconds=args.seconds, context_frames=args.context_frames,
        baseline_frames=args.baseline_frames, diffusion_steps=args.diffusion_steps, seed=args.seed))
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
