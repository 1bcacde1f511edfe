"""Loaded models kept in the worker process between tasks (loading is the slow part)."""

import functools

import torch

from model.codec import AudioCodec, load_codec
from model.respond import Responder
from model.text import TextEncoder, load_text_encoder
from model.zoo import load_agent


@functools.cache
def codec() -> AudioCodec:
    return load_codec("default")


@functools.cache
def text_encoder() -> TextEncoder:
    return load_text_encoder("default")


@functools.lru_cache(maxsize=4)
def responder(checkpoint: str) -> Responder:
    """The responder for a variant's checkpoint; a few stay loaded, least recently used go."""
    # One sampling task per worker process; intra-op threads beyond the cores only contend.
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    return Responder(load_agent(checkpoint), codec(), text_encoder())
