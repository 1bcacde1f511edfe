"""The vote form shares its fields between instances; that must not let campaigns leak."""

from __future__ import annotations

from labeling_app.forms import ComparisonForm
from labeling_app.models import DIMENSIONS

VOTE = {"submission_token": "6f1c2a52-51e4-4a4e-9a43-1a2b3c4d5e6f", "overall": "a", "strength": "2",
        "confidence": "4", "rationale": "", "time_spent_ms": "9000", "plays_a": "1", "plays_b": "1"}


def test_each_form_asks_only_its_campaigns_dimensions():
    speaking = ComparisonForm(dict(VOTE, speaking="a"), dimensions=["speaking"])
    listening = ComparisonForm(dict(VOTE), dimensions=["listening"])
    assert [d for d in DIMENSIONS if d in speaking.fields] == ["speaking"]
    assert [d for d in DIMENSIONS if d in listening.fields] == ["listening"]
    assert not any(d in ComparisonForm.base_fields for d in DIMENSIONS)
    assert speaking.is_valid(), speaking.errors
    assert not listening.is_valid()
    assert listening.errors["listening"] == ["Choose a judgment for Listening."]


def test_instances_share_the_class_fields_instead_of_copying_them():
    form = ComparisonForm(dict(VOTE), dimensions=[])
    assert form.fields is not ComparisonForm.base_fields
    assert all(form.fields[name] is field for name, field in ComparisonForm.base_fields.items())
