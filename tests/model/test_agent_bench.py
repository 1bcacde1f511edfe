import json

from model.bench import BenchConfig, format_table, main, run_benchmark


def test_benchmark_measures_both_paths_in_one_run():
    result = run_benchmark(BenchConfig(model="debug", seconds=0.5, context_frames=2, baseline_frames=1))
    assert result["frames"] == 12
    assert result["frames_per_second"] > 0
    assert abs(result["real_time_factor"] - result["frames_per_second"] / 24) < 1e-9
    assert result["cache_speedup"] == result["uncached_ms_per_frame_at_context"] / result["cached_ms_per_frame_at_context"]
    assert result["latency_ms_p50"] <= result["latency_ms_p95"] <= result["latency_ms_max"]
    assert "cache speed-up" in format_table(result)


def test_command_line_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    main(["--model", "debug", "--seconds", "0.25", "--context-frames", "1", "--baseline-frames", "1", "--json", str(out)])
    assert json.loads(out.read_text())["frames"] == 6
    assert "frames/s over 6 frames" in capsys.readouterr().out
