"""Alignment: preference data, the reward model and KL-penalised PPO on DeepSpeed.

Imports ``model`` only; never Django, ``labeling_app`` or ``workers`` (see ARCHITECTURE.md).
"""
