"""The engineers' forms: freeze a snapshot, launch a reward-model or PPO job.

Every hyper-parameter is a typed field; ``clean`` hands the chosen kind's fields to
``actions.jobs.parse_config``, the one validation of a job configuration (the API uses it too),
and shows its error on the field it names. Data and models are chosen as rows, never typed in
as paths.
"""

from __future__ import annotations

from django import forms

from labeling_app.actions.jobs import CONFIGS, ConfigError, parse_config
from labeling_app.models import AgentVariant, Campaign, PreferenceSnapshot, TrainingJob


class SnapshotForm(forms.Form):
    campaigns = forms.ModelMultipleChoiceField(queryset=Campaign.objects.order_by("name"),
                                               help_text="Their comparisons with both candidates' tokens are frozen.")
    name = forms.SlugField(max_length=120, required=False, help_text="Default: the campaign and the hash.")
    min_confidence = forms.TypedChoiceField(choices=[(n, n) for n in range(1, 6)], coerce=int, initial=1)


class TrainingJobForm(forms.Form):
    kind = forms.ChoiceField(choices=[(TrainingJob.Kind.REWARD, "Reward model"), (TrainingJob.Kind.PPO, "PPO")])
    base_variant = forms.ModelChoiceField(queryset=AgentVariant.objects.order_by("name"),
                                          help_text="The reward model's backbone, or PPO's initial policy.")
    snapshot = forms.ModelChoiceField(queryset=PreferenceSnapshot.objects.all(), required=False,
                                      help_text="Reward: the pairs to train on. PPO: its human turns (else the corpus).")
    reward_job = forms.ModelChoiceField(
        queryset=TrainingJob.objects.filter(kind=TrainingJob.Kind.REWARD, status=TrainingJob.Status.SUCCEEDED),
        required=False, help_text="PPO: the finished reward-model job that scores rollouts.")
    ranks = forms.IntegerField(required=False, help_text="DeepSpeed ranks (processes).")
    seed = forms.IntegerField(required=False)
    learning_rate = forms.FloatField(required=False)
    # Reward model
    num_train_epochs = forms.FloatField(required=False, label="Epochs (reward)")
    per_device_train_batch_size = forms.IntegerField(required=False, label="Pairs per rank per step (reward)")
    validation_fraction = forms.FloatField(required=False, label="Share of rounds held out (reward)")
    # PPO
    total_steps = forms.IntegerField(required=False, label="PPO steps")
    batch_size = forms.IntegerField(required=False, label="Rollouts per rank per step (PPO)")
    mini_batch_size = forms.IntegerField(required=False, label="Rollouts per optimiser step (PPO)")
    kl_coef = forms.FloatField(required=False, label="Beta, the KL coefficient (PPO)")
    episode_frames = forms.IntegerField(required=False, label="Video frames per rollout (PPO)")

    def clean(self):
        data = super().clean()
        if "kind" not in data:
            return data
        names = {f for f in CONFIGS[data["kind"]].__dataclass_fields__}
        values = {name: data[name] for name in names if name in self.fields and data.get(name) is not None}
        try:
            data["config"] = parse_config(data["kind"], values)
        except ConfigError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        return data
