"""The loop's report: report.md, report.json and the plots, written into the output directory.

Win rates and their 95% intervals are the site's own (the lead API's statistics report: Wilson
intervals, a tie counting half); the behaviour metrics are what the simulated annotators measured
on the clips they were shown, matched to variants through the API's comparisons (the annotators
never knew which side was which). The child's change in a metric is the mean of its paired
differences to the parent on the same turns, with a normal 95% interval. The claim the report
checks (``claim``): on the focus dimension the child's win-rate interval lies above 0.5, and no
metric of ``WORSE_MARGINS`` got worse by more than its margin.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from alignment.curves import series
from alignment.loop.config import JUDGED_BY, WORSE_MARGINS, LoopConfig
from alignment.loop.state import State
from alignment.metrics_log import read_metrics

FIELDS = ("overall", *sorted(JUDGED_BY))
STAGE_TEXT = {
    "1-campaign": "users, two variants of the default agent and campaign loop-1 (manage.py setup_campaign)",
    "2-annotate": "simulated annotators upload turns, wait, download both clips, judge and vote (HTTP)",
    "3-train": "snapshot, reward-model job, PPO job (the engineers' /jobs/ pages; the worker's jobs queue)",
    "4-child-campaign": "the PPO policy, registered as a variant, against its parent: campaign loop-2",
    "5-judge-child": "fresh simulated annotators judge loop-2; a lead reads the statistics (REST API)",
}

BETTER = {1: "higher", -1: "lower", 0: "- (signed)"}  # WORSE_MARGINS' directions, as the metrics table says them


def paired_metrics(votes: dict, comparisons: list[dict], child: int, parent: int) -> dict[str, dict]:
    """Per metric: the parent's and the child's mean and the child-minus-parent paired difference."""
    by_id = {c["public_id"]: c for c in comparisons}
    values: dict[str, list[tuple[float, float]]] = {}
    for vote in votes.values():
        row = by_id.get(vote.get("comparison"))
        if row is None:
            continue
        sides = {row["variant_left"]: vote["metrics"]["left"], row["variant_right"]: vote["metrics"]["right"]}
        for name in sides[child]:
            pair = (sides[parent][name], sides[child][name])
            if all(math.isfinite(v) for v in pair):
                values.setdefault(name, []).append(pair)
    out = {}
    for name, pairs in sorted(values.items()):
        parent_values, child_values = np.array(pairs).T
        diff = child_values - parent_values
        half = 1.96 * diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else math.nan
        out[name] = {"n": len(diff), "parent": float(parent_values.mean()), "child": float(child_values.mean()),
                     "diff": float(diff.mean()), "low": float(diff.mean() - half), "high": float(diff.mean() + half)}
    return out


def claim(focus: str, focus_rate: dict, paired: dict[str, dict]) -> dict:
    """Does the child beat its parent on ``focus`` (interval above 0.5) without another metric getting
    worse than its margin (``WORSE_MARGINS``): a mean paired difference past the margin whose 95%
    interval excludes 0, so that noise alone (a per-turn rate over 80 turns moves by ~0.07) fails none?"""
    worse = {}
    for name, m in paired.items():
        if name in WORSE_MARGINS:
            sign, margin = WORSE_MARGINS[name]
            if sign * m["diff"] < -margin and max(sign * m["low"], sign * m["high"]) < 0:
                worse[name] = m["diff"]
    beats = focus_rate["low"] is not None and focus_rate["low"] > 0.5
    return {"focus": focus, "beats_parent": beats, "worse": worse, "holds": beats and not worse}


def job_curves(output_dir: str, out: Path, title: str, names: tuple[str, ...]) -> tuple[Path | None, dict]:
    """A PNG of the job's logged scalars among ``names`` (prefix match) and their last values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = series(read_metrics(Path(output_dir))) if output_dir else {}
    chosen = {n: v for n, v in sorted(data.items()) if any(n.startswith(p) for p in names)}
    last = {n: v[1][-1] for n, v in chosen.items()}
    if not chosen:
        return None, last
    columns = min(4, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), constrained_layout=True, squeeze=False)
    for axis in axes.flat[len(chosen):]:
        axis.set_visible(False)
    for axis, (name, (steps, values)) in zip(axes.flat, chosen.items()):
        axis.plot(steps, values, marker="o", markersize=2)
        axis.set_title(name, fontsize=8)
        axis.set_xlabel("step", fontsize=7)
        axis.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out, last


def _bars(low: list[float], high: list[float]) -> np.ndarray:
    """Error-bar lengths for matplotlib: never negative (rounding), none where the interval is undefined."""
    return np.nan_to_num(np.clip(np.array([low, high], dtype=float), 0, None))


def win_rate_plot(rates: dict[int, dict], labels: dict[int, str], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 3.2), constrained_layout=True)
    for offset, (number, by_field) in zip((-0.15, 0.15), rates.items()):
        ys = np.arange(len(FIELDS)) + offset
        rate = [by_field[f]["rate"] if by_field[f]["rate"] is not None else math.nan for f in FIELDS]
        low = [r - (by_field[f]["low"] if by_field[f]["low"] is not None else r) for f, r in zip(FIELDS, rate)]
        high = [(by_field[f]["high"] if by_field[f]["high"] is not None else r) - r for f, r in zip(FIELDS, rate)]
        axis.errorbar(rate, ys, xerr=_bars(low, high), fmt="o", capsize=3, label=labels[number])
    axis.axvline(0.5, color="grey", linestyle=":")
    axis.set_yticks(range(len(FIELDS)), FIELDS)
    axis.set_xlim(0, 1)
    axis.set_xlabel("win rate of the first variant (95% Wilson interval, ties half)")
    axis.legend(fontsize=7, loc="lower right")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def metrics_plot(paired: dict[str, dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(paired)
    fig, axis = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2), constrained_layout=True)
    diff = [paired[n]["diff"] for n in names]
    axis.errorbar(diff, range(len(names)), xerr=_bars([d - paired[n]["low"] for n, d in zip(names, diff)],
                                                       [paired[n]["high"] - d for n, d in zip(names, diff)]),
                  fmt="o", capsize=3)
    axis.axvline(0, color="grey", linestyle=":")
    axis.set_yticks(range(len(names)), names, fontsize=7)
    axis.set_xlabel("child - parent, mean paired difference (95% interval)")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_report(config: LoopConfig, state: State, results: dict) -> dict:
    out = config.out
    stages = state.data["stages"]
    train = stages["3-train"]
    parent_id = stages["1-campaign"]["variants"]["loop-default-t1"]
    child_name = train["child"]
    second = results[2]
    child_id = second["campaign"]["variant_a"]
    rates = {n: {f: results[n]["statistics"]["report"]["win_rates"][f] for f in FIELDS} for n in (1, 2)}
    names = {n: [results[n]["variants"][results[n]["campaign"][k]]["name"] for k in ("variant_a", "variant_b")]
             for n in (1, 2)}
    paired = paired_metrics(stages["5-judge-child"]["votes"], second["comparisons"], child_id, parent_id)
    reward_png, reward_last = job_curves(train["reward"].get("output_dir", ""), out / "reward_curves.png",
                                         f"reward-model job {train['reward']['id']}", ("train/", "eval/"))
    ppo_png, ppo_last = job_curves(train["ppo"].get("output_dir", ""), out / "ppo_curves.png",
                                   f"PPO job {train['ppo']['id']}", ("ppo/reward", "ppo/kl", "ppo/approx_kl",
                                                                      "ppo/policy", "ppo/value", "ppo/beta"))
    win_png = win_rate_plot(rates, {n: f"loop-{n}: {names[n][0]} vs {names[n][1]}" for n in (1, 2)}, out / "win_rates.png")
    metrics_png = metrics_plot(paired, out / "metrics.png") if paired else None
    summary = {
        "config": config.as_dict(), "child": child_name, "parent": "loop-default-t1", "most_important": config.focus,
        "utilities": {name: dict(u.weights) for name, u in config.utilities.items()},
        "claim": claim(config.focus, rates[2][config.focus], paired),
        "win_rates": {str(n): rates[n] for n in (1, 2)}, "variants": {str(n): names[n] for n in (1, 2)},
        "comparisons": {str(n): len(results[n]["comparisons"]) for n in (1, 2)},
        "metrics": paired, "kl_to_parent": ppo_last.get("ppo/kl"), "ppo_last": ppo_last, "reward_last": reward_last,
        "stages": {name: {k: stages[name].get(k) for k in ("seconds", "wall_seconds", "runs")} for name in STAGE_TEXT},
        "restarts": state.data.get("restarts", 0),
    }
    (out / "report.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    (out / "report.md").write_text(markdown(summary, train, reward_png, ppo_png, win_png, metrics_png))
    return summary


def claim_lines(s: dict) -> list[str]:
    """The must-show, checked: the focus's win rate, the metrics past their margins, the KL."""
    verdict, focus = s["claim"], s["win_rates"]["2"][s["most_important"]]
    parent = {m: s["metrics"][m]["parent"] for m in s["utilities"][s["most_important"]] if m in s["metrics"]}
    worse = ", ".join(f"{name} {diff:+.3f} (margin {WORSE_MARGINS[name][1]:g})"
                      for name, diff in verdict["worse"].items())
    return [
        f"**Claim {'HOLDS' if verdict['holds'] else 'FAILS'}.** On {s['most_important']} the child's win rate "
        f"against its parent is {_fmt(focus['rate'])} [{_fmt(focus['low'])}, {_fmt(focus['high'])}] (n={focus['n']}): "
        f"{'above' if verdict['beats_parent'] else 'not above'} 0.5. "
        f"The parent's level there (loop-2): {', '.join(f'{m} {_fmt(v)}' for m, v in parent.items()) or '-'}. "
        "Margins for \"no other metric gets worse\" (in each metric's units; a metric fails when its mean "
        "paired difference is past the margin in its worse direction and its 95% interval excludes 0): "
        f"{', '.join(f'{n} {m:g}' for n, (_, m) in WORSE_MARGINS.items())}; past them: {worse or 'none'}. "
        f"KL to the parent: {_fmt(s['kl_to_parent'], 2)} nats per rollout (PPO's last ppo/kl).",
    ]


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def markdown(s: dict, train: dict, reward_png, ppo_png, win_png, metrics_png) -> str:
    c = s["config"]
    lines = [
        "# One RLHF iteration through the site (python -m alignment.loop)", "",
        f"Child **{s['child']}** (PPO job {train['ppo']['id']}) against its parent **{s['parent']}**. "
        f"{c['rounds']} held-out corpus questions in the first campaign (0-{c['rounds'] - 1}), {c['child_rounds']} "
        f"others in the second ({c['rounds']}-{c['rounds'] + c['child_rounds'] - 1}), overlap {c['overlap']}, "
        f"{c['annotators']} simulated annotators per campaign ({c['noisy_share']:.0%} noisy x{c['noisy_factor']:g}, "
        f"{c['biased_share']:.0%} leaning left by {c['position_bias']:g} logits, careful noise {c['temperature']:g}). "
        f"Restarts: {s['restarts']}.", "",
        f"The annotators care most about **{s['most_important']}**; their utilities (the overall verdict sums "
        f"them): {'; '.join(f'{d}: ' + ', '.join(f'{w:+g} {m}' for m, w in u.items()) for d, u in s['utilities'].items())}.",
        "", *claim_lines(s), "",
        "## Stages", "", "| stage | what ran | seconds (last run) | wall seconds | runs |", "|---|---|---|---|---|",
    ]
    for name, text in STAGE_TEXT.items():
        st = s["stages"][name]
        lines.append(f"| {name} | {text} | {_fmt(st['seconds'], 0)} | {_fmt(st['wall_seconds'], 0)} | {st['runs']} |")
    lines += ["", f"Comparisons: loop-1 {s['comparisons']['1']}, loop-2 {s['comparisons']['2']}.", "",
              f"Reward-model job {train['reward']['id']}: config {json.dumps(train['reward'].get('config'))}, "
              f"attempts {train['reward'].get('attempts')}.", ""]
    if reward_png:
        lines += [f"![reward-model curves]({reward_png.name})", ""]
    lines += [f"PPO job {train['ppo']['id']}: config {json.dumps(train['ppo'].get('config'))}, "
              f"attempts {train['ppo'].get('attempts')}.", ""]
    if ppo_png:
        lines += [f"![PPO curves]({ppo_png.name})", ""]
    lines += ["## Win rates (the site's statistics)", "", f"![win rates]({win_png.name})", "",
              "| field | loop-1 first-variant win rate [95% CI] (n) | child win rate vs parent [95% CI] (n) |",
              "|---|---|---|"]
    for field in FIELDS:
        cells = []
        for n in ("1", "2"):
            w = s["win_rates"][n][field]
            cells.append(f"{_fmt(w['rate'])} [{_fmt(w['low'])}, {_fmt(w['high'])}] ({w['n']})")
        lines.append(f"| {field} | {cells[0]} | {cells[1]} |")
    lines += ["", f"loop-1: {s['variants']['1'][0]} (first) vs {s['variants']['1'][1]}; "
              f"loop-2: {s['variants']['2'][0]} (first, the child) vs {s['variants']['2'][1]}.", "",
              "## Behaviour metrics, parent -> child (loop-2, paired on the same turns)", ""]
    if metrics_png:
        lines += [f"![metric differences]({metrics_png.name})", ""]
    lines += ["| metric | parent | child | child - parent [95% CI] | n | better | margin | worse than the margin |",
              "|---|---|---|---|---|---|---|---|"]
    for name, m in s["metrics"].items():
        direction, margin = WORSE_MARGINS.get(name, (0, None))
        lines.append(f"| {name} | {_fmt(m['parent'])} | {_fmt(m['child'])} | {_fmt(m['diff'])} "
                     f"[{_fmt(m['low'])}, {_fmt(m['high'])}] | {m['n']} | {BETTER[direction]} | "
                     f"{'-' if margin is None else f'{margin:g}'} | "
                     f"{'-' if margin is None else ('**yes**' if name in s['claim']['worse'] else 'no')} |")
    lines += ["", f"KL to the parent (PPO's last logged ppo/kl, nats per rollout): {_fmt(s['kl_to_parent'], 4)}.", ""]
    return "\n".join(lines) + "\n"
