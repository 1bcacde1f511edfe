"""A Gradio playground for ML engineers: try agent checkpoints on a turn before spending annotator time.

``python -m alignment.playground`` (or ``./dev playground``). Sampling runs in the playground's own
process (no broker, no worker, no Django): `engine` samples and scores, `app` is the Gradio UI.
"""
