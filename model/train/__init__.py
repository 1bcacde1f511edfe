"""Supervised fine-tuning of the agent G on the synthetic dialogue corpus, in two stages as in the paper.

`corpus` turns dialogue clips into the agent's tokens; `sft` is the Hugging Face Trainer run under
DeepSpeed (ZeRO-2 by default, 1 or 2 CPU ranks): stage "audio" trains on the dialogue's audio alone
(visual inputs empty, the diffusion head frozen and its loss masked), stage "audiovisual" continues
from the stage-1 weights with everything. ``python -m model.train --help`` runs one stage.
"""
