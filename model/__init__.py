"""The agent model G and its representations, in pure PyTorch.

Imports none of ``labeling_app``, ``workers`` or ``alignment`` (see ARCHITECTURE.md).
"""
