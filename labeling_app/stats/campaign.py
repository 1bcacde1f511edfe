"""One campaign's statistics as a JSON-ready report, and the overall report across campaigns.

The report is built from the aggregated rows of ``queries`` (a handful of GROUP BY statements)
plus numerics on those counts; it is what the worker stores and what pages and the API read.
"""

from __future__ import annotations

import statistics as pystats
from collections import defaultdict

import numpy as np
from django.utils import timezone

from labeling_app.models import AgentVariant, Campaign
from labeling_app.stats import queries
from labeling_app.stats.agreement import cohen_kappa, krippendorff_alpha, percent_agreement
from labeling_app.stats.anomalies import AnomalyConfig, flags_for, vote_outlier_z, z_to_p
from labeling_app.stats.bradley_terry import PairOutcomes, bootstrap
from labeling_app.stats.intervals import wilson
from labeling_app.stats.queries import FIELDS, TIE_CATEGORIES

REPORT_VERSION = 1


def _rate(wins: float, n: float) -> dict:
    interval = wilson(wins, n)
    return {"rate": wins / n if n else None, "low": interval[0] if interval else None,
            "high": interval[1] if interval else None}


def win_rate(first: int, second: int, ties: int) -> dict:
    """Share of the pair's judged comparisons won by the first variant, a tie counting half."""
    n = first + second + ties
    return {"first": first, "second": second, "ties": ties, "n": n, **_rate(first + ties / 2, n)}


def _outcomes(counts: dict, field: str) -> tuple[int, int, int]:
    ties = sum(counts[f"{field}__{c}"] for c in TIE_CATEGORIES)
    return counts[f"{field}__first"], counts[f"{field}__second"], ties


def _variant(variant: AgentVariant) -> dict:
    return {"id": variant.pk, "name": variant.name}


def agreement_section(campaign: Campaign, item: str) -> dict:
    """Alpha and percent agreement per field, the weekly alpha of the overall preference, and
    Cohen's kappa for every annotator pair that shared items."""
    _, counts = queries.item_value_counts(campaign, item)  # (items, fields, categories)
    per_field = {}
    for position, field in enumerate(FIELDS):
        matrix = counts[:, position, :]
        per_field[field] = {"alpha": krippendorff_alpha(matrix), "percent": percent_agreement(matrix),
                            "items": int((matrix.sum(axis=1) >= 2).sum())}
    weeks, weekly_counts = queries.item_value_counts(campaign, item, fields=("overall",), weekly=True)
    by_week = defaultdict(list)
    for week, row in zip(weeks, weekly_counts[:, 0, :]):
        by_week[week].append(row)
    weekly = [{"week": week.date().isoformat() if hasattr(week, "date") else str(week),
               "alpha": krippendorff_alpha(np.array(m, dtype=float)), "items": len(m)}
              for week, m in sorted(by_week.items())]
    index = {c: i for i, c in enumerate(("first", "second", "tie"))}
    confusions: dict[tuple[int, int], np.ndarray] = defaultdict(lambda: np.zeros((3, 3)))
    for a, b, ca, cb, count in queries.pair_confusions(campaign, item):
        confusions[(a, b)][index[ca], index[cb]] += count
    pairs = [{"annotators": [a, b], "items": int(m.sum()), "kappa": cohen_kappa(m),
              "agreement": float(np.trace(m) / m.sum())}
             for (a, b), m in sorted(confusions.items())]
    return {"item": item, "fields": per_field, "weekly": weekly, "pairs": pairs}


def gold_section(campaign: Campaign) -> tuple[dict, dict]:
    """Gold accuracy: per annotator ({id: {"n", "correct", "fields"}}, every field pooled) and
    for the campaign per field with Wilson intervals."""
    per_annotator, totals = {}, defaultdict(lambda: [0, 0])
    for row in queries.gold_counts(campaign):
        fields = {f: {"n": row[f"{f}__n"], "correct": row[f"{f}__correct"]} for f in FIELDS if row[f"{f}__n"]}
        for f, c in fields.items():
            totals[f][0] += c["correct"]
            totals[f][1] += c["n"]
        per_annotator[row["annotator_id"]] = {"n": sum(c["n"] for c in fields.values()),
                                              "correct": sum(c["correct"] for c in fields.values()), "fields": fields}
    section = {"annotators": len(per_annotator),
               "fields": {f: {"correct": c, "n": n, **_rate(c, n)} for f, (c, n) in totals.items()}}
    return per_annotator, section


def annotator_rows(campaign: Campaign, agreement: dict, gold: dict | None = None,
                   config: AnomalyConfig = AnomalyConfig()) -> list[dict]:
    """Per annotator: volume, position bias with its interval, time, agreement with the others
    (kappa averaged over their pairs, weighted by shared items), gold accuracy, outlier z, flags."""
    rows = queries.per_annotator(campaign)
    totals = np.zeros(3)
    for row in rows:
        totals += _outcomes(row, "overall")
    kappa_sum, kappa_items = defaultdict(float), defaultdict(int)
    for pair in agreement["pairs"]:
        if pair["kappa"] is None:
            continue
        for annotator in pair["annotators"]:
            kappa_sum[annotator] += pair["kappa"] * pair["items"]
            kappa_items[annotator] += pair["items"]
    means = [row["mean_ms"] for row in rows if row["mean_ms"] is not None]
    median_mean_ms = pystats.median(means) if means else None
    out = []
    for row in rows:
        own = np.array(_outcomes(row, "overall"), dtype=float)
        decided = row["left"] + row["right"]
        entry = {
            "id": row["annotator_id"], "username": row["username"], "n": row["n"],
            "left": row["left"], "right": row["right"], "left_rate": _rate(row["left"], decided),
            "mean_ms": row["mean_ms"], "fast": row["fast"],
            "first_at": row["first_at"].isoformat(), "last_at": row["last_at"].isoformat(),
            "shared_items": kappa_items.get(row["annotator_id"], 0),
            "kappa": (kappa_sum[row["annotator_id"]] / kappa_items[row["annotator_id"]]
                      if kappa_items.get(row["annotator_id"]) else None),
        }
        g = (gold or {}).get(row["annotator_id"])
        entry["gold_n"] = g["n"] if g else 0
        entry["gold_accuracy"] = g["correct"] / g["n"] if g and g["n"] else None
        z = vote_outlier_z(own, totals - own)
        entry["outlier_z"], entry["outlier_p"] = z, z_to_p(z)
        entry["flags"] = flags_for(entry, median_mean_ms, config)
        out.append(entry)
    return out


def campaign_report(campaign: Campaign, bootstrap_rounds: int = 200) -> dict:
    """Everything the campaign page and the API show, from the campaign's comparisons."""
    counts = queries.outcome_counts(campaign)
    variants = [_variant(campaign.variant_a), _variant(campaign.variant_b)]
    win_rates, ratings, position = {}, {}, {}
    for field in FIELDS:
        first, second, ties = _outcomes(counts, field)
        win_rates[field] = win_rate(first, second, ties)
        fitted = bootstrap(PairOutcomes.from_rows(2, [(0, 1, first, second, ties)]), rounds=bootstrap_rounds)
        ratings[field] = [{**variant, **elo} for variant, elo in zip(variants, fitted.elo())]
        left, right = counts[f"{field}__left"], counts[f"{field}__right"]
        position[field] = {"left": left, "right": right, **_rate(left, left + right)}
    agreement = {item: agreement_section(campaign, item) for item in queries.ITEM_KEYS}
    days = queries.per_day(campaign)
    gold, gold_summary = gold_section(campaign)
    return {
        "version": REPORT_VERSION,
        "generated_at": timezone.now().isoformat(),
        "campaign": {"id": campaign.pk, "slug": campaign.slug, "name": campaign.name},
        "variants": variants,
        "comparisons": counts["n"],
        "fields": list(FIELDS),
        "win_rates": win_rates,
        "ratings": ratings,
        "bootstrap_rounds": bootstrap_rounds,
        "position_bias": position,
        "agreement": agreement,
        "throughput": {
            "mean_ms": counts["mean_ms"], "total_hours": (counts["time_ms"] or 0) / 3.6e6,
            "first_at": counts["first_at"].isoformat() if counts["first_at"] else None,
            "last_at": counts["last_at"].isoformat() if counts["last_at"] else None,
            "per_day": [{"day": d["day"].isoformat(), "n": d["n"], "mean_ms": d["mean_ms"],
                         "annotators": d["annotators"]} for d in days],
        },
        "gold": gold_summary,
        "annotators": annotator_rows(campaign, agreement["clip"] if agreement["clip"]["pairs"] else agreement["scenario"], gold),
    }


def overall_report(campaign_reports: list[dict], bootstrap_rounds: int = 200) -> dict:
    """Across campaigns: every variant's Bradley-Terry rating per field (all pairs fitted
    together) and the win-rate matrix of every pair that was compared."""
    index: dict[int, int] = {}
    variants: list[dict] = []
    for report in campaign_reports:
        for variant in report["variants"]:
            if variant["id"] not in index:
                index[variant["id"]] = len(variants)
                variants.append(variant)
    ratings, matrix = {}, {}
    for field in FIELDS:
        pair_counts: dict[tuple[int, int], np.ndarray] = defaultdict(lambda: np.zeros(3))
        for report in campaign_reports:
            a, b = (index[v["id"]] for v in report["variants"])
            w = report["win_rates"][field]
            outcome = np.array([w["first"], w["second"], w["ties"]], dtype=float)
            if a < b:
                pair_counts[(a, b)] += outcome
            else:
                pair_counts[(b, a)] += outcome[[1, 0, 2]]
        rows = [(a, b, *c) for (a, b), c in sorted(pair_counts.items())]
        fitted = bootstrap(PairOutcomes.from_rows(len(variants), rows), rounds=bootstrap_rounds)
        ratings[field] = sorted(({**v, **e} for v, e in zip(variants, fitted.elo())), key=lambda r: -r["rating"])
        cells = []
        for (a, b), c in sorted(pair_counts.items()):
            cells.append({"row": variants[a]["id"], "column": variants[b]["id"], **win_rate(*map(int, c))})
            cells.append({"row": variants[b]["id"], "column": variants[a]["id"], **win_rate(int(c[1]), int(c[0]), int(c[2]))})
        matrix[field] = cells
    return {
        "version": REPORT_VERSION,
        "generated_at": timezone.now().isoformat(),
        "variants": variants,
        "campaigns": len(campaign_reports),
        "comparisons": sum(r["comparisons"] for r in campaign_reports),
        "fields": list(FIELDS),
        "ratings": ratings,
        "bootstrap_rounds": bootstrap_rounds,
        "win_matrix": matrix,
    }
