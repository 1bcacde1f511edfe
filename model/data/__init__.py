"""Data the project generates itself: espeak-ng speech (and, later, the synthetic dialogue corpus)."""
