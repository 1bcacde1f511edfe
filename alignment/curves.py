"""Loss and accuracy curves of a run as a PNG, drawn from its metrics file (alignment.metrics_log)."""

from pathlib import Path

from alignment.metrics_log import read_metrics


def series(lines: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """name -> (steps, values) from metrics lines."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for line in lines:
        for name, value in line.get("metrics", {}).items():
            steps, values = out.setdefault(name, ([], []))
            steps.append(line["step"])
            values.append(value)
    return out


def plot_curves(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw losses (left) and accuracies (right) of the run in `run_dir`; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "curves.png"
    data = series(read_metrics(run_dir))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for name, (steps, values) in sorted(data.items()):
        if name.endswith("/loss") and "reward/" not in name:
            left.plot(steps, values, marker="o" if name.startswith("eval") else None, label=name)
        elif "accuracy" in name:
            right.plot(steps, values, marker="o" if name.startswith("eval") else None, label=name)
    left.set(title="loss", xlabel="step")
    right.set(title="pairwise accuracy", xlabel="step", ylim=(0, 1))
    right.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    for axis in (left, right):
        if axis.lines:
            axis.legend(fontsize=7)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
