"""Configuration of the agent model G, with the named `tiny`, `paper` and `debug` configurations."""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from model.motion import NUM_JOINTS

if TYPE_CHECKING:
    from model.codec import AudioCodec

DAC_FRAME_RATE = 44_100 / 512  # the paper's codec: 44.1 kHz, hop 512 -> ~86.13 code frames/s


def _tiny_backbone() -> dict:
    """Qwen2 settings of the shipped CPU agent: small enough for 2x real time on one thread."""
    return {
        "hidden_size": 128,  # per-call cost on CPU is dominated by Python overhead up to ~256
        "intermediate_size": 384,  # 3x hidden, Qwen2's usual ratio rounded down for speed
        "num_hidden_layers": 2,  # each layer adds ~0.3 ms per forward call; 5 calls per frame
        "num_attention_heads": 4,  # head dim 32
        "num_key_value_heads": 2,  # grouped-query attention as in Qwen2; halves the KV cache
        "vocab_size": 1,  # unused: the backbone is always fed inputs_embeds
        "max_position_embeddings": 32768,  # ~2 minutes of frames at 10 positions per frame
        "rope_theta": 10000.0,  # standard RoPE base; contexts stay short
        "rms_norm_eps": 1e-6,  # Qwen2's default
        "tie_word_embeddings": False,  # there is no LM head to tie
    }


@dataclass
class AgentConfig:
    """Sizes of every stream the agent reads and writes, the backbone and the diffusion head."""

    # Audio codec contract (model.codec): K residual codebooks of `codebook_size` codes; the delay
    # pattern's special token is `codebook_size`, so each head predicts codebook_size + 1 classes.
    num_codebooks: int = 9  # codec default: 9 codebooks (DAC also has 9)
    codebook_size: int = 1024  # codec default: 1024 codes per codebook
    # The video frame rate is derived, never set: fps = codec_frame_rate / R, so an agent always
    # pairs with the codec it was built for (DAC's ~86.13 Hz with R = 4 gives ~21.5 fps).
    codec_frame_rate: float = 96.0  # model.codec.AudioCodec.frame_rate: 24 kHz / hop 250
    audio_frames_per_video_frame: int = 4  # R: 96 codec frames/s at 24 fps video
    # Visual tokens: L2 continuous tokens of width D per frame, produced by the diffusion head.
    visual_tokenizer: str = "pose"  # the model.agent.visual_tokens kind whose tokens these are
    visual_tokens: int = 5  # L2: a 135-number pose (3 + 6 * 22) splits exactly into 5 x 27
    visual_token_dim: int = 27  # D
    human_visual_tokens: int = 5  # the human's tokens come from the same pose tokenizer
    human_visual_token_dim: int = 27  # ditto
    # Controls.
    prompt_dim: int = 384  # MiniLM sentence embedding (paper: CLIP L/14 text, 768)
    trajectory_dim: int = 3 * NUM_JOINTS  # joint velocities (x, y, z) of every joint per frame: 66
    num_identities: int = 4  # a few learned identity embeddings
    # Scene (the paper's V_0, as object tokens): up to this many objects, each its kind, position and
    # colour (model.agent.inputs.scene_features); 0 turns the input off (checkpoints before it load).
    scene_objects: int = 0
    # Backbone: keyword arguments of transformers.Qwen2Config.
    backbone: dict = field(default_factory=_tiny_backbone)
    backbone_path: str | None = None  # local directory of a pretrained Qwen2 checkpoint, if any
    # Diffusion head (MAR-style MLP with AdaLN).
    diffusion_width: int = 128  # MLP width; small because it runs `diffusion_steps` times per frame
    diffusion_depth: int = 2  # residual AdaLN blocks
    diffusion_train_steps: int = 1000  # timesteps of the training schedule, as in MAR / ADM
    diffusion_batch_mul: int = 4  # noise draws per backbone output in training (MAR uses 4)
    # Sampling clips the predicted x0 to +-this (ADM's clip_denoised): at t = T the cosine schedule
    # multiplies noise-prediction errors by ~2e4, so an under-trained head would diverge. Tokens are
    # expected at about unit scale; None turns clipping off (MAR's choice for well-trained heads).
    diffusion_clip_x0: float | None = 10.0
    diffusion_loss_weight: float = 1.0  # the paper sums cross-entropy and diffusion loss
    # Turn feature (model.agent.inputs.turn_buckets): the control slot also gets an embedding of how
    # many frames the human has been quiet (their codebook-0 codes all in `quiet_codes`), capped at
    # turn_buckets - 2, or "not spoken yet". 0 turns it off (checkpoints written before it).
    turn_buckets: int = 0
    quiet_codes: list[int] = field(default_factory=list)  # the codec's codebook-0 codes of silence
    # Inner monologue (model.agent.model): the agent also predicts its own text, one token per frame
    # at the control slot, and frame i's audio steps read frame i's token. text_vocab tokens, 0 the
    # PAD ("nothing new"); model.data.monologue's characters need 44. 0 turns it off (checkpoints before it).
    text_vocab: int = 0
    text_loss_weight: float = 1.0  # weight of the text cross-entropy in the loss

    def __post_init__(self) -> None:
        for name in ("num_codebooks", "codebook_size", "audio_frames_per_video_frame", "visual_tokens",
                     "visual_token_dim", "num_identities", "diffusion_width", "diffusion_depth",
                     "diffusion_train_steps", "diffusion_batch_mul"):
            if getattr(self, name) < 1:
                raise ValueError(f"AgentConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.scene_objects < 0:
            raise ValueError(f"AgentConfig.scene_objects must be >= 0, got {self.scene_objects}")
        if not self.codec_frame_rate > 0:
            raise ValueError(f"AgentConfig.codec_frame_rate must be > 0, got {self.codec_frame_rate}")
        if self.turn_buckets and (self.turn_buckets < 2 or not self.quiet_codes):
            raise ValueError("AgentConfig.turn_buckets must be 0 (off) or >= 2 with quiet_codes given")
        if self.text_vocab == 1 or self.text_vocab < 0:
            raise ValueError(f"AgentConfig.text_vocab must be 0 (off) or >= 2 (PAD and a token), got {self.text_vocab}")
        if any(not 0 <= code < self.codebook_size for code in self.quiet_codes):
            raise ValueError(f"AgentConfig.quiet_codes must be codes in [0, {self.codebook_size}), got {self.quiet_codes}")
        if "hidden_size" not in self.backbone:
            raise ValueError("AgentConfig.backbone must give Qwen2Config keyword arguments, hidden_size included")

    @property
    def hidden_size(self) -> int:
        return self.backbone["hidden_size"]

    @property
    def fps(self) -> float:
        """Video frames per second: R codec frames make one video frame; real time is `fps` frames a second."""
        return self.codec_frame_rate / self.audio_frames_per_video_frame

    def check_codec(self, codec: "AudioCodec") -> None:
        """Raise ValueError unless `codec` speaks the codes and frame rate this agent was built for."""
        if (codec.num_codebooks, codec.codebook_size) != (self.num_codebooks, self.codebook_size):
            raise ValueError(f"codec has {codec.num_codebooks} codebooks of {codec.codebook_size} codes but the "
                             f"agent expects {self.num_codebooks} of {self.codebook_size}")
        if not math.isclose(codec.frame_rate, self.codec_frame_rate, rel_tol=1e-9):
            raise ValueError(f"codec runs at {codec.frame_rate} frames/s, the agent at {self.codec_frame_rate} "
                             f"({self.audio_frames_per_video_frame} audio frames per video frame at {self.fps:g} fps)")

    def with_codec(self, codec: "AudioCodec") -> "AgentConfig":
        """This configuration resized to `codec`'s codebooks and frame rate (R is kept)."""
        return dataclasses.replace(self, num_codebooks=codec.num_codebooks, codebook_size=codec.codebook_size,
                                   codec_frame_rate=float(codec.frame_rate))

    @property
    def positions_per_frame(self) -> int:
        """Control slot + R agent audio slots + L2 agent visual slots (see model.agent.model)."""
        return 1 + self.audio_frames_per_video_frame + self.visual_tokens

    @property
    def special_token(self) -> int:
        return self.codebook_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AgentConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        if "fps" in data:  # checkpoints written before fps was derived from the codec
            data = dict(data)
            fps = data.pop("fps")
            r = data.get("audio_frames_per_video_frame", cls.audio_frames_per_video_frame)
            data.setdefault("codec_frame_rate", float(fps * r))
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown AgentConfig fields: {unknown}")
        return cls(**data)

    @classmethod
    def named(cls, name: str) -> "AgentConfig":
        if name not in NAMED_CONFIGS:
            raise ValueError(f"unknown agent configuration {name!r}; known: {sorted(NAMED_CONFIGS)}")
        return NAMED_CONFIGS[name]()


def _paper() -> AgentConfig:
    """Paper scale: Qwen2-7B-Instruct dimensions, DAC codes, CLIP L/14 prompts, pixel-video tokens.

    Set `backbone_path` to a local Qwen2-7B-Instruct directory to start from its weights; its own
    config.json then replaces `backbone`, and its token embedding is dropped (the agent feeds
    `inputs_embeds`; a 152k-word table would be ~545 M unused parameters). DAC runs at ~86.13 Hz,
    so R = 4 gives ~21.5 fps video.
    """
    return AgentConfig(
        codec_frame_rate=DAC_FRAME_RATE,
        visual_tokenizer="pixel",  # a later issue: make_visual_tokenizer refuses it until then
        visual_tokens=32,  # TiTok-like 1D tokenizer without quantizer: 32 tokens x 16 dims
        visual_token_dim=16,
        human_visual_tokens=32,
        human_visual_token_dim=16,
        prompt_dim=768,  # CLIP L/14 text embedding
        backbone={
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "vocab_size": 1,  # unused: the backbone is always fed inputs_embeds
            "max_position_embeddings": 32768,
            "rope_theta": 1000000.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
        },
        diffusion_width=1024,  # MAR-L's head width
        diffusion_depth=6,  # MAR's head depth
    )


def _debug() -> AgentConfig:
    """A few hundred thousand parameters, for fast tests."""
    return AgentConfig(
        num_codebooks=3,
        codebook_size=32,
        codec_frame_rate=48.0,  # 24 fps with R = 2, like the shipped agent
        audio_frames_per_video_frame=2,
        visual_tokens=2,
        visual_token_dim=4,
        human_visual_tokens=3,
        human_visual_token_dim=2,
        prompt_dim=8,
        trajectory_dim=6,
        num_identities=2,
        backbone={**_tiny_backbone(), "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4},
        diffusion_width=64,
        diffusion_train_steps=100,
    )


NAMED_CONFIGS = {"tiny": AgentConfig, "paper": _paper, "debug": _debug}
