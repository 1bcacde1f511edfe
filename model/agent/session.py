"""The agent in a live exchange: a streaming session with a KV cache, one video frame per step.

A session advances one video frame per `step` call, given the human's tokens of the frame that just
ended; offline generation is the same loop. Every sampled value records its log-probability (audio:
per codebook token, under the full distribution at the temperature and under the top-k sampling
distribution, see model.agent.sampling; visuals: the Gaussian density of every stochastic
denoising step), and `rollout()` returns them with everything the frames saw.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache

from model.agent.delay_pattern import delay_valid_mask, revert_delay_pattern
from model.agent.inputs import SCENE_FEATURES
from model.agent.rollout import Rollout
from model.agent.sampling import (
    SamplingParams,
    audio_full_log_distribution,
    audio_log_distribution,
    pick_log_probs,
    sample_categorical,
    text_log_distribution,
)

if TYPE_CHECKING:
    from model.agent.model import AgentModel


@dataclass
class FrameOutput:
    """What one session step produced for video frame `index`.

    audio_tokens (K, R) delayed tokens of this frame's audio steps; audio_codes (K, n) the audio
    frames completed by them (n = R once K - 1 steps have passed); visual_tokens (L2, D);
    audio_logits (R, K, V + 1) and visual_cond (L2, H) as the backbone produced them; with the
    text stream, text_token () the monologue's token of the frame and text_logits (text_vocab,).
    """

    index: int
    audio_tokens: torch.Tensor
    audio_codes: torch.Tensor
    visual_tokens: torch.Tensor
    audio_logits: torch.Tensor
    visual_cond: torch.Tensor
    text_token: torch.Tensor | None = None
    text_logits: torch.Tensor | None = None


class StreamingSession:
    """The agent in a live exchange: R + 1 backbone calls per frame on one KV cache.

    `use_cache=False` recomputes the whole sequence at every call instead; it exists as the
    benchmark's baseline and must sample exactly the same tokens.
    """

    def __init__(self, model: "AgentModel", params: SamplingParams, prompt: torch.Tensor | None = None,
                 identity: int | None = None, use_cache: bool = True, scene: torch.Tensor | None = None) -> None:
        config = model.config
        if prompt is not None and tuple(prompt.shape) != (config.prompt_dim,):
            raise ValueError(f"prompt must have shape ({config.prompt_dim},), got {tuple(prompt.shape)}")
        if identity is not None and not 0 <= identity < config.num_identities:
            raise ValueError(f"identity must lie in [0, {config.num_identities}), got {identity}")
        self.model, self.config, self.params = model, config, params
        if scene is not None and not config.scene_objects:
            raise ValueError("this agent has no scene input (AgentConfig.scene_objects = 0)")
        if scene is not None and tuple(scene.shape) != (config.scene_objects, SCENE_FEATURES):
            raise ValueError(f"scene must have shape ({config.scene_objects}, {SCENE_FEATURES}), got {tuple(scene.shape)}")
        self.prompt, self.identity, self.scene = prompt, identity, scene
        self.use_cache = use_cache
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(params.seed)
        self.cache = DynamicCache(config=model.backbone.config) if use_cache else None
        self._past_inputs: list[torch.Tensor] = []  # only without cache
        # Per frame: only what later frames and rollout() need (not the logits: 150 kB a frame).
        self._audio_tokens: list[torch.Tensor] = []
        self._visual_tokens: list[torch.Tensor] = []
        self._chains: list[torch.Tensor] = []
        self._visual_log_probs: list[torch.Tensor] = []
        self._audio_log_probs: list[torch.Tensor] = []  # full distribution at the temperature
        self._audio_sampling_log_probs: list[torch.Tensor] = []  # after the top-k cut
        self._text: dict[str, list[torch.Tensor]] = {"tokens": [], "log_probs": [], "sampling_log_probs": []}
        self._continued: tuple[tuple[int, SamplingParams], ...] = ()  # see Rollout.continued
        self._first_params = params
        self._received: dict[str, list[torch.Tensor | None]] = {"human_audio": [], "human_visual": [], "trajectory": []}
        self._last_loud: int | None = None  # the human's last loud frame (the turn feature), None: not yet

    @classmethod
    @torch.inference_mode()
    def from_rollout(cls, model: "AgentModel", rollout: Rollout, params: SamplingParams | None = None,
                     use_cache: bool = True) -> "StreamingSession":
        """A session that continues `rollout`: its frames become the context, read in one backbone call.

        The next step takes the human's last frame of the rollout. The prefix keeps its recorded
        log-probabilities and parameters; new frames are sampled with `params` (default: those of
        the rollout's last segment) from a generator seeded afresh, and the continued rollout
        records them as a new segment (`Rollout.continued`), so `AgentModel.log_probs` scores
        every frame under the parameters that sampled it. The number of denoising steps cannot
        change: every frame's diffusion chain has the same length.
        """
        last = rollout.segments()[-1][2]
        params = params or last
        if params.diffusion_steps != rollout.visual_chain.shape[1] - 1:
            raise ValueError(f"the rollout was sampled with {rollout.visual_chain.shape[1] - 1} denoising steps; "
                             f"a continuation cannot use {params.diffusion_steps}")
        session = cls(model, params, prompt=rollout.prompt, identity=rollout.identity, use_cache=use_cache,
                      scene=rollout.scene)
        r, t = model.config.audio_frames_per_video_frame, rollout.num_frames
        session._first_params = rollout.params
        session._continued = (*rollout.continued, (t, params))
        session._backbone(model.embed(rollout.to_batch()))
        session._audio_tokens = list(rollout.audio_tokens.split(r, dim=1))  # T x (K, R)
        session._audio_log_probs = list(rollout.audio_log_probs.split(r, dim=1))
        session._audio_sampling_log_probs = list(rollout.audio_sampling_log_probs.split(r, dim=1))
        session._visual_tokens = list(rollout.visual_tokens)
        session._chains = list(rollout.visual_chain)
        session._visual_log_probs = list(rollout.visual_log_probs)
        if model.config.text_vocab:
            if rollout.text_tokens is None:
                raise ValueError("the agent has a text stream but the rollout has no text tokens")
            for name in session._text:
                session._text[name] = list(getattr(rollout, f"text_{name}"))
        for name in session._received:
            value = getattr(rollout, name)
            present = rollout.present.get(name)
            frames = [None if value is None or (present is not None and not present[i]) else
                      (value[:, i * r : (i + 1) * r] if name == "human_audio" else value[i]) for i in range(t)]
            # The human's last frame of the rollout was never received: the next step brings it.
            session._received[name] = frames[: t - 1] if name.startswith("human") else frames
        for frame, codes in enumerate(session._received["human_audio"]):
            session._hear(frame, codes)
        return session

    def _hear(self, frame: int, human_audio: torch.Tensor | None) -> None:
        """Track the human's last loud frame for the turn feature (human_audio (K, R) of `frame`)."""
        if self.config.turn_buckets and human_audio is not None and not self.model.embedder.human_quiet(human_audio.T):
            self._last_loud = frame

    def _turn(self, i: int) -> torch.Tensor | None:
        """Frame i's turn bucket (1, 1), as model.agent.inputs.turn_buckets computes it for a whole clip."""
        if not self.config.turn_buckets:
            return None
        bucket = 0 if self._last_loud is None else 1 + min(i - 1 - self._last_loud, self.config.turn_buckets - 2)
        return torch.tensor([[bucket]], device=self.device)

    @property
    def num_frames(self) -> int:
        return len(self._visual_tokens)

    def _backbone(self, inputs: torch.Tensor) -> torch.Tensor:
        """Run the backbone on new positions (1, n, H) after everything so far -> their outputs (1, n, H)."""
        if self.use_cache:
            return self.model.run_backbone(inputs, cache=self.cache)
        self._past_inputs.append(inputs)
        return self.model.run_backbone(torch.cat(self._past_inputs, dim=1))[:, -inputs.shape[1]:]

    def _check(self, name: str, value: torch.Tensor | None, shape: tuple[int, ...]) -> None:
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")

    @torch.inference_mode()  # ~8% faster than no_grad on CPU; rollout() returns ordinary tensors
    def step(self, human_audio: torch.Tensor | None = None, human_visual: torch.Tensor | None = None,
             trajectory: torch.Tensor | None = None) -> FrameOutput:
        """Produce the agent's next frame i from the human's frame i - 1.

        human_audio (K, R) codes and human_visual (L2h, Dh) tokens are the human's newest frame
        (None at the first step, or when missing); trajectory (J,) is the control for frame i.
        """
        c, model, params = self.config, self.model, self.params
        k, r = c.num_codebooks, c.audio_frames_per_video_frame
        i = self.num_frames
        self._check("human_audio", human_audio, (k, r))
        self._check("human_visual", human_visual, (c.human_visual_tokens, c.human_visual_token_dim))
        self._check("trajectory", trajectory, (c.trajectory_dim,))
        if i == 0 and (human_audio is not None or human_visual is not None):
            raise ValueError("the first step has no previous human frame: pass human_audio=None, human_visual=None")
        if human_audio is not None and (human_audio.min() < 0 or human_audio.max() >= c.codebook_size):
            raise ValueError(f"human_audio codes must lie in [0, {c.codebook_size})")
        if i > 0:
            self._hear(i - 1, human_audio)
            self._received["human_audio"].append(human_audio)
            self._received["human_visual"].append(human_visual)
        self._received["trajectory"].append(trajectory)

        control = model.embedder.control(
            torch.tensor([i], device=self.device), 1,
            prompt=None if self.prompt is None else self.prompt[None],
            trajectory=None if trajectory is None else trajectory[None, None],
            identity=None if self.identity is None else torch.tensor([self.identity], device=self.device),
            human_audio=None if human_audio is None else human_audio.T[None, None],  # (1, 1, R, K)
            human_visual=None if human_visual is None else human_visual[None, None],
            agent_visual=None if i == 0 else self._visual_tokens[-1][None, None],
            turn=self._turn(i),
            scene=None if self.scene is None else self.scene[None],
        )  # (1, 1, H)
        sampled = delay_valid_mask(k, (i + 1) * r, device=self.device)[:, i * r:]  # (K, R): codebook k starts at step k
        hidden = self._backbone(control)
        text_token = text_logits = None
        if model.text_head is not None:  # the monologue first: this frame's audio steps read it
            text_logits = model.text_head(hidden[0, -1])  # (text_vocab,)
            text_dist = text_log_distribution(text_logits, params)
            text_token = sample_categorical(text_dist[None], self.generator)[0]
            self._text["tokens"].append(text_token)
            self._text["sampling_log_probs"].append(text_dist[text_token])
            self._text["log_probs"].append(text_log_distribution(text_logits, params, full=True)[text_token]
                                           if params.top_k is not None and params.top_k < c.text_vocab
                                           else text_dist[text_token])
        tokens, log_probs, sampling_log_probs, logits = [], [], [], []
        top_k = params.top_k is not None and params.top_k < c.codebook_size
        for slot in range(r):
            step_logits = model.audio_logits(hidden[0, -1])  # (K, V + 1)
            log_dist = audio_log_distribution(step_logits, params, model.audio_quiet)
            drawn = sample_categorical(log_dist, self.generator)  # (K,)
            token = torch.where(sampled[:, slot], drawn, torch.full_like(drawn, c.special_token))
            picked = pick_log_probs(log_dist, token, sampled[:, slot])
            sampling_log_probs.append(picked)
            log_probs.append(pick_log_probs(audio_full_log_distribution(step_logits, params, model.audio_quiet), token,
                                            sampled[:, slot])
                             if top_k else picked)
            tokens.append(token)
            logits.append(step_logits)
            inputs = model.embedder.agent_audio(token[None, None], first_slot=slot + 1,
                                                text=None if text_token is None else text_token[None])  # (1, 1, H)
            if slot == r - 1:  # the visual slots follow the frame's last audio slot in the same call
                inputs = torch.cat([inputs, model.embedder.visual_queries()[None]], dim=1)  # (1, 1 + L2, H)
            hidden = self._backbone(inputs)
        cond = hidden[0, 1:]  # (L2, H)
        visual, chain, visual_log_probs = model.diffusion.sample(
            cond, params.diffusion_steps, params.visual_temperature, self.generator)
        audio_tokens = torch.stack(tokens, dim=1)  # (K, R)
        self._audio_log_probs.append(torch.stack(log_probs, dim=1))
        self._audio_sampling_log_probs.append(torch.stack(sampling_log_probs, dim=1))
        self._chains.append(chain)
        self._visual_log_probs.append(visual_log_probs)
        output = FrameOutput(i, audio_tokens, self._completed_codes(audio_tokens), visual,
                             torch.stack(logits), cond, text_token, text_logits)
        self._audio_tokens.append(audio_tokens)
        self._visual_tokens.append(visual)
        return output

    def _completed_codes(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """Audio frames whose last codebook arrived with this frame's tokens new_tokens (K, R) -> (K, n)."""
        k, r = self.config.num_codebooks, self.config.audio_frames_per_video_frame
        steps = (self.num_frames + 1) * r
        first = max(0, steps - r - k + 1)  # audio frames complete before this step
        last = max(0, steps - k + 1)  # audio frames complete after it
        if last == first:
            return new_tokens.new_zeros(k, 0)
        recent = self._audio_tokens[first // r:] + [new_tokens]
        window = torch.cat(recent, dim=1)[:, first % r:]  # (K, steps - first): steps first .. steps - 1
        return revert_delay_pattern(window)  # (K, last - first)

    def rollout(self) -> Rollout:
        """Everything sampled so far, with what it was conditioned on."""
        if not self._visual_tokens:
            raise ValueError("the session has not produced any frame yet")
        c = self.config
        t = self.num_frames
        stacked, present = {}, {}
        for name, values in self._received.items():
            values = values + [None] * (t - len(values))  # the human's last frame is never received
            mask = torch.tensor([v is not None for v in values], device=self.device)
            if not mask.any():
                stacked[name] = None
                continue
            # Frames never received hold zeros; `present` replaces them with the empty embedding.
            template = next(v for v in values if v is not None)
            stacked[name] = torch.stack([torch.zeros_like(template) if v is None else v for v in values])
            if not mask.all():
                present[name] = mask
        text = {f"text_{name}": torch.stack(values) if values else None for name, values in self._text.items()}
        if stacked["human_audio"] is not None:
            stacked["human_audio"] = stacked["human_audio"].permute(1, 0, 2).flatten(1)  # (T, K, R) -> (K, T * R)
        return Rollout(
            audio_tokens=torch.cat(self._audio_tokens, dim=1),
            audio_log_probs=torch.cat(self._audio_log_probs, dim=1),
            audio_sampling_log_probs=torch.cat(self._audio_sampling_log_probs, dim=1),
            audio_sampled=delay_valid_mask(c.num_codebooks, t * c.audio_frames_per_video_frame, device=self.device),
            visual_tokens=torch.stack(self._visual_tokens),
            visual_chain=torch.stack(self._chains),
            visual_log_probs=torch.stack(self._visual_log_probs),
            params=self._first_params, continued=self._continued,
            prompt=self.prompt, identity=self.identity, scene=self.scene, present=present, **stacked, **text,
        )
