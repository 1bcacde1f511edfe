"""PPO curves as a PNG from a run's metrics file: reward and KL, then the learning diagnostics."""

from pathlib import Path

from alignment.metrics_log import read_metrics

PANELS = (
    ("reward (RM score)", ("ppo/reward", "ppo/rlhf_reward")),
    ("KL(pi || pi_ref) per rollout", ("ppo/kl", "ppo/kl_audio", "ppo/kl_diffusion")),
    ("entropy (audio tokens)", ("ppo/entropy",)),
    ("clip fractions", ("ppo/clipfrac_tokens", "ppo/clipfrac_diffusion", "ppo/clipfrac_value")),
    ("approx KL (old -> new)", ("ppo/approx_kl",)),
    ("critic", ("ppo/value_loss", "ppo/explained_variance")),
)


def plot_ppo_curves(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw the run's PPO metrics in six panels; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "curves.png"
    lines = [line for line in read_metrics(run_dir) if "metrics" in line]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), constrained_layout=True)
    for axis, (title, names) in zip(axes.flat, PANELS):
        for name in names:
            points = [(line["step"], line["metrics"][name]) for line in lines if name in line["metrics"]]
            if points:
                axis.plot(*zip(*points), label=name)
        axis.set(title=title, xlabel="PPO step")
        if axis.lines:
            axis.legend(fontsize=7)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
