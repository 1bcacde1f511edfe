"""Forms of the annotator workspace: they validate and translate, with messages for people."""

from __future__ import annotations

from django import forms

from labeling_app.actions.comparisons import Vote
from labeling_app.models import DIMENSIONS, Judgment, Overall, Round
from labeling_app.models.choices import Dimension, Strength

# Postgres integer columns; a page left open for longer than ~24 days is not a real measurement.
MAX_TIME_SPENT_MS = 2**31 - 1
MAX_PLAYS = 10_000


class UploadForm(forms.Form):
    """The non-file part of an upload; the file itself is checked by ``media_checks``."""

    source = forms.ChoiceField(
        choices=Round.Source.choices,
        error_messages={
            "required": "Say whether the clip was recorded in the page or uploaded (field 'source').",
            "invalid_choice": "The field 'source' must be 'recorded' or 'uploaded'.",
        },
    )


def _judgment_field(dimension: str) -> forms.ChoiceField:
    label = Dimension(dimension).label
    return forms.ChoiceField(
        choices=Judgment.choices,
        error_messages={
            "required": f"Choose a judgment for {label}.",
            "invalid_choice": f"The judgment for {label} must be A better, B better, tie, "
            "both bad or not applicable.",
        },
    )


# Built once: building a choice field normalises its choices, measurable on every vote.
JUDGMENT_FIELDS = {dimension: _judgment_field(dimension) for dimension in DIMENSIONS}


class SharedFields(dict):
    """A form's ``base_fields`` that its instances share instead of deep-copying.

    ``BaseForm.__init__`` deep-copies every field so that one instance may change its own
    (labels, widgets, choices) without touching the class. A form that only validates never
    does, and copying a choice field normalises its choices again: on the vote, the hottest
    request, the copies cost more than the validation. Instances get a dict of the same fields.
    """

    def __deepcopy__(self, memo):
        return dict(self)


def plays_field(side: str) -> forms.IntegerField:
    """How often one clip was played to the end; at least once, or the vote stays locked."""
    name = side.split()[0]
    return forms.IntegerField(
        min_value=1,
        max_value=MAX_PLAYS,
        error_messages={
            "required": f"Play response {side} to the end before you vote.",
            "invalid": f"The play count of response {name} must be a whole number.",
            "min_value": f"Play response {side} to the end before you vote.",
            "max_value": f"The play count of response {name} is implausibly high.",
        },
    )


class ComparisonForm(forms.Form):
    """A vote on one pair. Only the campaign's dimensions are asked; the rest are stored "na".

    ``plays_a`` / ``plays_b`` count full plays of the left / right clip; the page only unlocks
    the vote after both were played to the end, and this form refuses zero plays too.

    It only validates (the page draws its own controls), so its instances share their fields
    (``SharedFields``): never change a field of an instance.
    """

    submission_token = forms.UUIDField(
        error_messages={
            "required": "The vote form has no submission token. Reload the page and vote again.",
            "invalid": "The vote form's submission token is damaged. Reload the page and vote again.",
        }
    )
    overall = forms.ChoiceField(
        choices=Overall.choices,
        error_messages={
            "required": "Choose your overall preference: A better, B better or tie.",
            "invalid_choice": "The overall preference must be A better, B better or tie.",
        },
    )
    strength = forms.TypedChoiceField(
        choices=Strength.choices,
        coerce=int,
        required=False,
        error_messages={"invalid_choice": "Strength must be 1 (slightly), 2 (clearly) or 3 (much)."},
    )
    confidence = forms.TypedChoiceField(
        choices=[(value, str(value)) for value in range(1, 6)],
        coerce=int,
        error_messages={
            "required": "Say how confident you are, from 1 (a guess) to 5 (certain).",
            "invalid_choice": "Confidence must be a whole number from 1 to 5.",
        },
    )
    rationale = forms.CharField(
        required=False,
        max_length=5000,
        error_messages={"max_length": "Keep the rationale under 5000 characters."},
    )
    time_spent_ms = forms.IntegerField(
        min_value=0,
        max_value=MAX_TIME_SPENT_MS,
        error_messages={
            "required": "The page did not report the time you spent; reload it and vote again.",
            "invalid": "The time spent must be a whole number of milliseconds.",
            "min_value": "The time spent cannot be negative.",
            "max_value": "The time spent is implausibly long; reload the page and vote again.",
        },
    )
    plays_a = plays_field("A (left)")
    plays_b = plays_field("B (right)")

    def __init__(self, *args, dimensions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.dimensions = [d for d in DIMENSIONS if d in dimensions]
        for dimension in self.dimensions:
            self.fields[dimension] = JUDGMENT_FIELDS[dimension]

    def clean(self):
        cleaned = super().clean()
        overall = cleaned.get("overall")
        if overall == Overall.TIE:
            cleaned["strength"] = Strength.SLIGHT  # a tie has no strength; stored as 1
        elif overall and not cleaned.get("strength"):
            self.add_error("strength", "Say how much better it is: 1 (slightly), 2 (clearly) or 3 (much).")
        return cleaned

    def first_error(self) -> str:
        """The first problem, in the order of the form on the page, as one sentence."""
        order = [*self.dimensions, "overall", "strength", "confidence", "rationale",
                 "plays_a", "plays_b", "time_spent_ms", "submission_token"]
        for name in order:
            if name in self.errors:
                return self.errors[name][0]
        return next(iter(self.errors.values()))[0]

    def vote(self) -> Vote:
        data = self.cleaned_data
        return Vote(
            submission_token=data["submission_token"],
            judgments={d: data.get(d, Judgment.NOT_APPLICABLE) for d in DIMENSIONS},
            overall=data["overall"],
            strength=int(data["strength"]),
            confidence=data["confidence"],
            rationale=data["rationale"].strip(),
            time_spent_ms=data["time_spent_ms"],
            plays_a=data["plays_a"],
            plays_b=data["plays_b"],
        )


ComparisonForm.base_fields = SharedFields(ComparisonForm.base_fields)
