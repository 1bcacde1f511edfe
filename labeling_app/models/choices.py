"""The vocabulary of a judgment: the five dimensions and the choices allowed on each."""

from django.db import models


class Dimension(models.TextChoices):
    """What an annotator judges a candidate pair on (the paper's five RLHF dimensions)."""

    SPEAKING = "speaking", "Speaking"
    LISTENING = "listening", "Listening"
    MANIPULATION = "manipulation", "Manipulation"
    IDENTITY = "identity", "Identity consistency"
    QA_SAFETY = "qa_safety", "Question-answer safety"


DIMENSIONS: tuple[str, ...] = tuple(Dimension.values)


class Judgment(models.TextChoices):
    """A per-dimension verdict on the pair as shown (A = left, B = right)."""

    A = "a", "A better"
    B = "b", "B better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"
    NOT_APPLICABLE = "na", "Not applicable"


class Overall(models.TextChoices):
    """The overall preference; strength says by how much."""

    A = "a", "A better"
    B = "b", "B better"
    TIE = "tie", "Tie"


class Strength(models.IntegerChoices):
    SLIGHT = 1, "Slightly"
    CLEAR = 2, "Clearly"
    MUCH = 3, "Much"
