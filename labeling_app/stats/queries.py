"""The database side of the statistics: GROUP BY queries that turn comparison rows into counts.

Nothing here loops over comparisons in Python; each function is one statement whose result has
one row per group (per campaign, annotator, day, item or annotator pair).

Orientation. A comparison records sides as shown ("a" = left better). Statistics need variants,
so each judgment is re-oriented to the campaign: ``first`` means the campaign's variant A was
better, ``second`` variant B. The variant on the left is the left candidate's variant, so this
also holds for any viewer whose sides differ from the round's author.

Categories: first, second, tie, both_bad. "Not applicable" is no judgment and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Avg, Count, ExpressionWrapper, F, Max, Min, Q, QuerySet, Sum
from django.db.models.fields import BooleanField
from django.db.models.functions import TruncDate, TruncWeek

from labeling_app.models import DIMENSIONS, Campaign, Candidate, Comparison, ReviewItem

FIELDS: tuple[str, ...] = ("overall", *DIMENSIONS)
CATEGORIES: tuple[str, ...] = ("first", "second", "tie", "both_bad")
# A tie and "both bad" both say neither response was better: each counts half a win.
TIE_CATEGORIES = ("tie", "both_bad")


@dataclass(frozen=True)
class Thresholds:
    """Query-side thresholds (the rest live in anomalies.AnomalyConfig)."""

    # A comparison faster than this cannot have watched both clips (each lasts several seconds).
    fast_ms: int = 5000


def comparisons_of(campaign: Campaign) -> QuerySet:
    return Comparison.objects.filter(scenario__campaign_id=campaign.pk)


def _first_on_left(campaign: Campaign) -> Q:
    return Q(candidate_a__variant_id=campaign.variant_a_id)


def category_filters(campaign: Campaign, field: str) -> dict[str, Q]:
    """For one judgment field, the condition of each oriented category (see module docstring)."""
    left = _first_on_left(campaign)
    return {
        "first": (Q(**{field: "a"}) & left) | (Q(**{field: "b"}) & ~left),
        "second": (Q(**{field: "b"}) & left) | (Q(**{field: "a"}) & ~left),
        "tie": Q(**{field: "tie"}),
        "both_bad": Q(**{field: "both_bad"}),
    }


def _category_counts(campaign: Campaign, fields=FIELDS) -> dict:
    return {
        f"{field}__{category}": Count("id", filter=condition)
        for field in fields
        for category, condition in category_filters(campaign, field).items()
    }


def outcome_counts(campaign: Campaign) -> dict:
    """One row: the campaign's counts per field and category, left/right picks per field (for
    position bias), the number of comparisons and their total and mean time."""
    side_counts = {
        f"{field}__{side}": Count("id", filter=Q(**{field: value}))
        for field in FIELDS
        for side, value in (("left", "a"), ("right", "b"))
    }
    return comparisons_of(campaign).aggregate(
        n=Count("id"), time_ms=Sum("time_spent_ms"), mean_ms=Avg("time_spent_ms"),
        first_at=Min("submitted_at"), last_at=Max("submitted_at"),
        **_category_counts(campaign), **side_counts,
    )


def per_annotator(campaign: Campaign, thresholds: Thresholds = Thresholds()) -> list[dict]:
    """One row per annotator: volume, side picks (overall), oriented overall outcomes, time."""
    return list(
        comparisons_of(campaign)
        .values("annotator_id", username=F("annotator__username"))
        .annotate(
            n=Count("id"),
            left=Count("id", filter=Q(overall="a")),
            right=Count("id", filter=Q(overall="b")),
            mean_ms=Avg("time_spent_ms"),
            fast=Count("id", filter=Q(time_spent_ms__lt=thresholds.fast_ms)),
            first_at=Min("submitted_at"),
            last_at=Max("submitted_at"),
            **_category_counts(campaign, fields=("overall",)),
        )
        .order_by("annotator_id")
    )


def per_day(campaign: Campaign) -> list[dict]:
    """Volume and time per UTC day."""
    return list(
        comparisons_of(campaign)
        .annotate(day=TruncDate("submitted_at"))
        .values("day")
        .annotate(n=Count("id"), mean_ms=Avg("time_spent_ms"), annotators=Count("annotator_id", distinct=True))
        .order_by("day")
    )


# What counts as "the same item" for agreement:
#   clip      the same recorded pair (the comparison's round): identical clips, the real thing.
#             Only a round under review (models.reviews) has more than one vote (the database
#             allows one own vote per round), so only those rounds are read.
#   scenario  the same scenario, each annotator with their own turn: a weaker proxy
ITEM_KEYS = {"clip": "round_id", "scenario": "scenario_id"}


def _items_of(campaign: Campaign, item: str) -> QuerySet:
    rows = comparisons_of(campaign)
    if item == "clip":  # through the round index, from the (few) reviewed rounds
        rows = rows.filter(round_id__in=ReviewItem.objects.values("round_id"))
    return rows


def item_value_counts(campaign: Campaign, item: str = "clip", fields=FIELDS,
                      weekly: bool = False) -> tuple[list, np.ndarray]:
    """Per item (and week, if ``weekly``) judged by at least two annotators: ``(weeks, counts)``,
    ``counts`` of shape (items, fields, categories) in ``CATEGORIES`` order, ``weeks`` the
    week of each row (None without ``weekly``).

    The rows come straight from the cursor: tens of thousands of items through the ORM's
    per-row converters cost more than the database spends grouping them.
    """
    groups = {"item": F(ITEM_KEYS[item])}
    if weekly:
        groups["week"] = TruncWeek("submitted_at")
    counts = _category_counts(campaign, fields)
    rows = (
        _items_of(campaign, item)
        .values(**groups)
        .annotate(votes=Count("id"), **counts)
        .filter(votes__gte=2)
        .order_by(*groups)
    )
    # values() + annotate() select the groups, then the annotations, in the order given.
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        data = cursor.fetchall()
    first = len(groups) + 1
    matrix = np.array([row[first:] for row in data], dtype=float).reshape(len(data), len(fields), len(CATEGORIES))
    return ([row[1] for row in data] if weekly else None), matrix


def pair_confusions(campaign: Campaign, item: str = "clip") -> list[tuple]:
    """(annotator 1, annotator 2, category 1, category 2, count) over items both judged, for the
    overall preference, annotator 1 < annotator 2. A self-join on the item, grouped in SQL."""
    key = {"clip": "c.round_id", "scenario": "c.scenario_id"}[item]
    reviewed = f"AND c.round_id IN (SELECT round_id FROM {ReviewItem._meta.db_table})" if item == "clip" else ""
    comparison = Comparison._meta.db_table
    candidate = Candidate._meta.db_table
    scenario = Comparison._meta.get_field("scenario").related_model._meta.db_table
    sql = f"""
        WITH votes AS (
            SELECT c.annotator_id AS annotator, {key} AS item,
                   CASE WHEN c.overall = 'tie' THEN 'tie'
                        WHEN (c.overall = 'a') = (ca.variant_id = %s) THEN 'first'
                        ELSE 'second' END AS category
            FROM {comparison} c
            JOIN {candidate} ca ON ca.id = c.candidate_a_id
            JOIN {scenario} s ON s.id = c.scenario_id
            WHERE s.campaign_id = %s {reviewed}
        )
        SELECT x.annotator, y.annotator, x.category, y.category, COUNT(*)
        FROM votes x JOIN votes y ON x.item = y.item AND x.annotator < y.annotator
        GROUP BY x.annotator, y.annotator, x.category, y.category
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.variant_a_id, campaign.pk])
        return cursor.fetchall()


def gold_counts(campaign: Campaign) -> list[dict]:
    """One row per annotator who judged gold items: per field, how many votes met a known
    answer (``<field>__n``) and how many matched it (``<field>__correct``), oriented as above."""
    counts = {}
    for field in FIELDS:
        known = Q(**{f"review__gold__{field}__gt": ""})
        matched = Q()
        for category, condition in category_filters(campaign, field).items():
            matched |= condition & Q(**{f"review__gold__{field}": category})
        counts[f"{field}__n"] = Count("id", filter=known)
        counts[f"{field}__correct"] = Count("id", filter=known & matched)
    return list(
        comparisons_of(campaign).filter(review__gold__isnull=False)
        .values("annotator_id").annotate(**counts).order_by("annotator_id")
    )


def first_is_left_expression(campaign: Campaign) -> ExpressionWrapper:
    """Whether the campaign's variant A was on the viewer's left (for listings)."""
    return ExpressionWrapper(_first_on_left(campaign), output_field=BooleanField())
