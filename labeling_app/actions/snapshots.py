"""Snapshots: freeze a campaign's comparisons into an immutable, content-hashed directory.

This module is the one definition of the snapshot format (``her-snapshot-v1``) on the writing
side; ``alignment/snapshot.py`` reads it without Django (its ``write_snapshot`` writes the same
layout for experiments outside the site, and the round trip is tested). The layout, in the media
storage under ``snapshots/<sha256>/``::

    snapshot.json      {"format", "sha256", "comparisons", "dimensions", "filters"}
    manifest.jsonl     one comparison a line, keys sorted, compact JSON, ordered by comparison id
    rollouts/<candidate>.safetensors   each candidate's sampled tokens, copied

A manifest line::

    {"comparison": uuid, "round": uuid, "annotator": user id, "campaign": slug,
     "a": SIDE, "b": SIDE,              # a = the clip shown on the left
     "labels": {dimension: "a" | "b" | "tie" | "both_bad" | "na"},
     "overall": "a" | "b" | "tie", "strength": 1..3, "confidence": 1..5}
    SIDE = {"candidate": uuid, "variant": id, "variant_name": slug, "checkpoint": str,
            "rollout": "rollouts/<candidate>.safetensors", "rollout_sha256": hex}

``sha256`` is the SHA-256 of manifest.jsonl, so the same comparisons always give the same hash
and a model card naming it names exactly its data. Files are copied, so later deletions in the
site cannot change a snapshot. ``PreferenceSnapshot.path`` is the directory's name in the storage.
"""

from __future__ import annotations

import hashlib
import json

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from labeling_app.actions import Refused
from labeling_app.models import Campaign, Comparison, PreferenceSnapshot

SNAPSHOT_FORMAT = "her-snapshot-v1"
ROOT = "snapshots"


def create_snapshot(campaigns: list[Campaign], user=None, min_confidence: int = 1,
                    name: str | None = None) -> tuple[PreferenceSnapshot, bool]:
    """Freeze the comparisons of ``campaigns`` (confidence >= ``min_confidence``) whose two
    candidates both have tokens. Returns ``(snapshot, created)``: the same data gives the same
    snapshot row back. Refused when nothing qualifies (an empty snapshot trains nothing)."""
    if not campaigns:
        raise Refused("Choose at least one campaign.", status=400)
    comparisons = (Comparison.objects.filter(scenario__campaign__in=campaigns, confidence__gte=min_confidence)
                   .exclude(candidate_a__tokens="").exclude(candidate_b__tokens="")
                   .select_related("round", "annotator", "scenario__campaign", "candidate_a__variant",
                                   "candidate_b__variant"))
    comparisons = sorted(comparisons, key=lambda c: str(c.public_id))
    if not comparisons:
        raise Refused("No comparison of these campaigns has both candidates' tokens: nothing to snapshot.",
                      status=400)
    dimensions = sorted({d for campaign in campaigns for d in campaign.dimensions})
    rollouts: dict[str, bytes] = {}
    lines = []
    for comparison in comparisons:
        sides = {}
        for side, candidate in (("a", comparison.candidate_a), ("b", comparison.candidate_b)):
            key = str(candidate.public_id)
            if key not in rollouts:
                with candidate.tokens.open("rb") as f:
                    rollouts[key] = f.read()
            sides[side] = {"candidate": key, "variant": candidate.variant_id,
                           "variant_name": candidate.variant.name, "checkpoint": candidate.variant.checkpoint,
                           "rollout": f"rollouts/{key}.safetensors",
                           "rollout_sha256": hashlib.sha256(rollouts[key]).hexdigest()}
        lines.append({"comparison": str(comparison.public_id), "round": str(comparison.round.public_id),
                      "annotator": comparison.annotator_id, "campaign": comparison.scenario.campaign.slug,
                      **sides, "labels": {d: getattr(comparison, d) for d in dimensions},
                      "overall": comparison.overall, "strength": comparison.strength,
                      "confidence": comparison.confidence})
    manifest = "".join(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n" for line in lines).encode()
    sha256 = hashlib.sha256(manifest).hexdigest()
    existing = PreferenceSnapshot.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing, False
    filters = {"campaigns": sorted(c.slug for c in campaigns), "min_confidence": min_confidence}
    directory = f"{ROOT}/{sha256}"
    _write_once(f"{directory}/manifest.jsonl", manifest)
    for key, data in rollouts.items():
        _write_once(f"{directory}/rollouts/{key}.safetensors", data)
    info = {"format": SNAPSHOT_FORMAT, "sha256": sha256, "comparisons": len(lines), "dimensions": dimensions,
            "filters": filters}
    # Written last: a directory without snapshot.json is an interrupted write, never loaded.
    _write_once(f"{directory}/snapshot.json", (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
    with transaction.atomic():
        snapshot, created = PreferenceSnapshot.objects.get_or_create(
            sha256=sha256, defaults=dict(name=name or f"{filters['campaigns'][0]}-{sha256[:12]}"[:120],
                                         filters=filters, path=directory, comparison_count=len(lines),
                                         created_by=user))
        if created:
            snapshot.campaigns.set(campaigns)
    return snapshot, created


def snapshot_directory(snapshot: PreferenceSnapshot) -> str:
    """The snapshot's directory on this machine's disk (what ``alignment.snapshot`` loads)."""
    return default_storage.path(snapshot.path)


def _write_once(name: str, data: bytes) -> None:
    """Write a file at exactly ``name``; an existing one (an interrupted earlier write of the same
    content-addressed snapshot) is replaced, since its name is fixed by the content."""
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    assert saved == name, f"storage renamed {name} to {saved}"
