"""The domain records of the labeling site, one module per concept.

variants     AgentVariant: a checkpoint plus sampling parameters that annotators compare
campaigns    Campaign, Scenario: which variants are compared, on what, by how many annotators
assignments  Assignment: an item handed to one annotator, with an expiring lock
rounds       Round, Candidate: the annotator's recorded turn and the agents' sampled responses
playback     ClipServing: what of each clip the server sent to its annotator (proof of playback)
comparisons  Comparison: the annotator's judgment of one candidate pair
reviews      ReviewItem, GoldAnswer: a recorded pair sent to more annotators, its known answer
statistics   StatisticsReport: leads' statistics, precomputed by a worker
training     PreferenceSnapshot, TrainingJob, TrainingMetric: what engineers train on and run
"""

from labeling_app.models.assignments import Assignment
from labeling_app.models.campaigns import Campaign, Scenario
from labeling_app.models.choices import DIMENSIONS, Judgment, Overall
from labeling_app.models.comparisons import Comparison
from labeling_app.models.playback import ClipServing
from labeling_app.models.reviews import GoldAnswer, ReviewItem
from labeling_app.models.rounds import Candidate, Round
from labeling_app.models.statistics import StatisticsReport
from labeling_app.models.training import PreferenceSnapshot, TrainingJob, TrainingMetric
from labeling_app.models.variants import AgentVariant

__all__ = [
    "DIMENSIONS",
    "AgentVariant",
    "Assignment",
    "Campaign",
    "Candidate",
    "ClipServing",
    "Comparison",
    "GoldAnswer",
    "Judgment",
    "Overall",
    "PreferenceSnapshot",
    "ReviewItem",
    "Round",
    "Scenario",
    "StatisticsReport",
    "TrainingJob",
    "TrainingMetric",
]
