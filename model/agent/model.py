"""The agent model G: a Qwen2 backbone over video frames, delay-pattern audio heads, a diffusion head.

Sequence layout, per video frame i (R audio frames per video frame, L2 visual tokens)::

    [ c_i | a_i,1 ... a_i,R | v_i,1 ... v_i,L2 ]

- c_i, the control slot: the sum of frame i's controls (prompt, trajectory, identity, time), the
  human's audio and visual tokens of frame i - 1 and the agent's own visual tokens of frame i - 1
  (each replaced by its learned empty embedding when missing).
- a_i,r: the agent's delayed audio tokens of step s = iR + r - 1 (summed codebook embeddings).
- v_i,j: learned queries; their outputs condition the diffusion head for visual token j of frame i.
- With the inner monologue on (`AgentConfig.text_vocab` > 0), the output at c_i also predicts the
  agent's text token t_i of frame i (a character or PAD, model.data.monologue), and t_i's embedding
  is added to the inputs a_i,1 .. a_i,R: frame i's audio reads frame i's text. t_i sees exactly
  what audio step iR sees (so the text is sampled first, from the same backbone call), and the
  text of frame i - 1 through a_i-1,r. The training text leads the voice by two frames, so the
  audio follows a text plan (Moshi's inner monologue).

Under the delay pattern an audio frame is complete K - 1 steps after its first codebook (with
K = 9 and R = 4: two video frames, 83 ms at 24 fps), the price of one step per K codes.

The output at c_i predicts audio step iR, the output at a_i,r predicts step iR + r (r < R); the
output at a_i,R is not read, since step (i + 1)R must wait for the human's frame i. Summing all
inputs into c_i keeps the sequence at 1 + R + L2 positions per frame and a frame at R + 1 backbone
calls (c_i, a_i,1 .. a_i,R-1 one by one, then a_i,R with the visual slots), which is what makes the
tiny agent faster than real time on one CPU thread.

Causality, exactly: the audio logits of step s = iR + r depend only on controls of frames <= i,
human tokens of frames <= i - 1, agent visual tokens of frames <= i - 1, agent audio steps < s and
agent text of frames < i, or <= i for r > 0 (the text logits of frame i: those of step iR).
The visual conditions of frame i depend on the same inputs plus all audio steps of frame i (so lips
can follow the voice). No output of frame i sees the human's frame i or anything the agent
produces after it; tests/model/test_agent_model.py checks each clause.
"""

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, Qwen2Config, Qwen2Model

from model.agent.batch import AgentBatch
from model.agent.checkpoint import read_checkpoint, write_checkpoint
from model.agent.config import NAMED_CONFIGS, AgentConfig
from model.agent.diffusion import DiffusionHead
from model.agent.inputs import FrameEmbedder, turn_buckets
from model.agent.rollout import Rollout
from model.agent.sampling import (
    SamplingParams,
    audio_token_log_probs,
    masked_logsumexp,
    quiet_mask,
    text_token_log_probs,
)
from model.agent.session import StreamingSession

# transformers 5 renamed the forward's `past_key_values` to `cache`; accept both spellings.
_CACHE_ARG = "cache" if "cache" in inspect.signature(Qwen2Model.forward).parameters else "past_key_values"
_BACKBONE_CONFIG_DROP = ("architectures", "transformers_version", "torch_dtype", "dtype", "_name_or_path")


@dataclass
class AgentOutput:
    audio_logits: torch.Tensor  # (B, S, K, V + 1), S = T * R audio steps
    visual_cond: torch.Tensor  # (B, T, L2, H), the diffusion head's condition per visual token slot
    text_logits: torch.Tensor | None = None  # (B, T, text_vocab) at the control slots; None without text


@dataclass
class RolloutLogProbs:
    """Log-probabilities of a rollout; a leading batch dimension B when several were scored.

    `audio` is what PPO's ratios and KL use: the full distribution at the sampling temperature,
    finite under any weights. `audio_sampling` is the exact sampling distribution (after top-k),
    -inf for a token outside this model's top k; without top-k the two are equal.
    """

    audio: torch.Tensor  # (K, S), 0 where the delay pattern placed the special token
    visual: torch.Tensor  # (T, diffusion_steps - 1, L2), one Gaussian log-density per stochastic step
    audio_sampling: torch.Tensor  # (K, S)
    text: torch.Tensor | None = None  # (T,) the monologue's tokens, full distribution; None without text
    text_sampling: torch.Tensor | None = None  # (T,) under the exact sampling distribution


class AgentModel(nn.Module):
    """G: scores token sequences (`forward`, `loss`, `log_probs`) and samples them (`session`, `generate`).

    `backbone` is the Qwen2 model; a reward or value model can reuse it with `hidden_states`.
    """

    def __init__(self, config: AgentConfig, backbone: Qwen2Model | None = None) -> None:
        super().__init__()
        self.config = config
        if backbone is None:
            backbone = Qwen2Model(Qwen2Config(**config.backbone, attn_implementation="sdpa"))
        if backbone.config.hidden_size != config.hidden_size:
            raise ValueError(f"backbone hidden size {backbone.config.hidden_size} != config {config.hidden_size}")
        self.backbone = backbone
        self.embedder = FrameEmbedder(config)
        self.audio_head = nn.Linear(config.hidden_size, config.num_codebooks * (config.codebook_size + 1))
        # Only with the text stream: checkpoints of agents without it keep their keys.
        self.text_head = nn.Linear(config.hidden_size, config.text_vocab) if config.text_vocab else None
        self.diffusion = DiffusionHead(config.visual_token_dim, config.hidden_size, config.diffusion_width,
                                       config.diffusion_depth, config.diffusion_train_steps, config.diffusion_clip_x0)
        # (K, V) codebook 0's quiet codes, or None: sampling keeps their temperature-1 mass (model.agent.sampling).
        self.register_buffer("audio_quiet", quiet_mask(config.quiet_codes, config.num_codebooks, config.codebook_size),
                             persistent=False)

    @classmethod
    def from_config(cls, config: AgentConfig) -> "AgentModel":
        """A new model; the backbone starts from `config.backbone_path` (local only) when it is set."""
        if config.backbone_path is None:
            return cls(config)
        backbone = Qwen2Model.from_pretrained(config.backbone_path, local_files_only=True,
                                              attn_implementation="sdpa", dtype=torch.float32)
        # The agent feeds inputs_embeds: the word embedding (152k x 3584 in Qwen2-7B) is never read.
        backbone.embed_tokens = nn.Embedding(1, backbone.config.hidden_size)
        backbone.config.vocab_size, backbone.config.pad_token_id = 1, None
        backbone_config = {k: v for k, v in backbone.config.to_dict().items() if k not in _BACKBONE_CONFIG_DROP}
        return cls(AgentConfig.from_dict({**config.to_dict(), "backbone": backbone_config}), backbone)

    # --- the network -------------------------------------------------------------------------

    def run_backbone(self, inputs_embeds: torch.Tensor, cache: DynamicCache | None = None) -> torch.Tensor:
        """Backbone outputs (B, N, H) for inputs (B, N, H), after the cached positions if a cache is given."""
        kwargs = {_CACHE_ARG: cache, "use_cache": cache is not None}
        if cache is None and not getattr(self.backbone, "has_sliding_layers", False):
            # A whole unpadded sequence is plainly causal: hand the layers no mask (SDPA's is_causal)
            # instead of letting transformers inspect position ids for packed sequences, a
            # data-dependent check that syncs a GPU and cannot run on the meta device.
            kwargs["attention_mask"] = {"full_attention": None}
        return self.backbone(inputs_embeds=inputs_embeds, **kwargs).last_hidden_state

    def audio_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """One softmax head per codebook: (..., H) -> (..., K, V + 1)."""
        return self.audio_head(hidden).unflatten(-1, (self.config.num_codebooks, self.config.codebook_size + 1))

    def embed(self, batch: AgentBatch) -> torch.Tensor:
        """The backbone's input sequence (B, T * P, H) for a whole batch (layout in the module docstring)."""
        c = self.config
        batch.validate(c)
        b, t = batch.batch_size, batch.num_frames
        k, r = c.num_codebooks, c.audio_frames_per_video_frame
        present = {name: mask if mask.dim() == 2 else mask[:, None].expand(b, t) for name, mask in batch.present.items()}
        # Frame i sees the human's and its own visual frame i - 1: shift by one, frame 0 sees nothing.
        shifted = {}
        sources = {
            "human_audio": None if batch.human_audio is None else batch.human_audio.view(b, k, t, r).permute(0, 2, 3, 1),  # (B, T, R, K)
            "human_visual": batch.human_visual,
            "agent_visual": batch.agent_visual,
        }
        for name, value in sources.items():
            if value is None:
                shifted[name] = None
                continue
            shifted[name] = torch.cat([torch.zeros_like(value[:, :1]), value[:, :-1]], dim=1)
            mask = present.get(name, torch.ones(b, t, dtype=torch.bool, device=value.device))
            present[name] = torch.cat([torch.zeros_like(mask[:, :1]), mask[:, :-1]], dim=1)  # (B, T)
        turn = None
        if c.turn_buckets:
            heard = shifted["human_audio"]
            quiet = (torch.ones(b, t, dtype=torch.bool, device=batch.device) if heard is None else
                     self.embedder.human_quiet(heard) | ~present["human_audio"])  # (B, T): frame i hears i - 1
            turn = turn_buckets(quiet, c.turn_buckets)
        control = self.embedder.control(
            torch.arange(t, device=batch.agent_visual.device), b, prompt=batch.prompt, trajectory=batch.trajectory,
            identity=batch.identity, present=present, turn=turn, scene=batch.scene, **shifted)  # (B, T, H)
        audio = self.embedder.agent_audio(batch.agent_audio.view(b, k, t, r).permute(0, 2, 3, 1),  # (B, T, R, H)
                                          text=batch.agent_text)
        visual = self.embedder.visual_queries().expand(b, t, -1, -1)  # (B, T, L2, H)
        return torch.cat([control[:, :, None], audio, visual], dim=2).flatten(1, 2)  # (B, T * P, H)

    def hidden_states(self, batch: AgentBatch) -> torch.Tensor:
        """The backbone's outputs per frame and slot (B, T, P, H): what a reward or value head reads."""
        c = self.config
        return self.run_backbone(self.embed(batch)).view(batch.batch_size, batch.num_frames, c.positions_per_frame, -1)

    def forward(self, batch: AgentBatch) -> AgentOutput:
        r = self.config.audio_frames_per_video_frame
        hidden = self.hidden_states(batch)  # (B, T, P, H)
        logits = self.audio_logits(hidden[:, :, :r]).flatten(1, 2)  # (B, T, R, K, V+1) -> (B, S, K, V+1)
        text = None if self.text_head is None else self.text_head(hidden[:, :, 0])  # (B, T, text_vocab)
        return AgentOutput(audio_logits=logits, visual_cond=hidden[:, :, 1 + r:], text_logits=text)

    def loss(self, batch: AgentBatch, audio_weights: torch.Tensor | None = None, hazard_weight: float = 0.0
             ) -> dict[str, torch.Tensor]:
        """Masked cross-entropy over the delayed audio tokens + the diffusion loss of the visual tokens.

        `audio_weights` (B, S), optional, weighs each audio step's cross-entropy (a training recipe
        may stress the turn-taking steps); "audio" is then the weighted mean and "audio_mean" the plain one.
        `hazard_weight` adds that multiple of `onset_hazard_loss` (agents with quiet codes only);
        "hazard" is reported either way (0 without quiet codes). With the text stream, "text" is the
        cross-entropy of the monologue's tokens at every frame (PAD included: when to say the next
        character is part of the plan), added `text_loss_weight` times; 0 without it.
        """
        out = self(batch)
        targets = batch.agent_audio.transpose(1, 2)  # (B, S, K)
        valid = targets != self.config.special_token  # the delay pattern's empty positions carry no loss
        # ignore_index rather than boolean indexing: no data-dependent shape (no GPU sync, runs on meta).
        per_token = F.cross_entropy(out.audio_logits.flatten(0, 2), targets.masked_fill(~valid, -100).flatten(),
                                    ignore_index=-100, reduction="none").view_as(targets)  # (B, S, K), 0 if not valid
        audio_mean = per_token.sum() / valid.sum().clamp(min=1)
        audio = audio_mean
        if audio_weights is not None:
            weights = valid * audio_weights[:, :, None]  # (B, S, K)
            audio = (per_token * weights).sum() / weights.sum().clamp(min=1e-6)
        diffusion = self.diffusion.loss(batch.agent_visual.flatten(0, 2),  # (B * T * L2, D)
                                        out.visual_cond.flatten(0, 2),  # (B * T * L2, H)
                                        self.config.diffusion_batch_mul)
        if hazard_weight and self.audio_quiet is None:
            raise ValueError("hazard_weight needs an agent with quiet codes (AgentConfig.quiet_codes)")
        hazard = (self.onset_hazard_loss(out.audio_logits[:, :, 0], targets[:, :, 0]) if self.audio_quiet is not None
                  else audio.new_zeros(()))
        text = audio.new_zeros(())
        if out.text_logits is not None:
            if batch.agent_text is None:
                raise ValueError("the agent has a text stream (text_vocab > 0) but the batch carries no agent_text")
            text = F.cross_entropy(out.text_logits.flatten(0, 1), batch.agent_text.flatten())
        total = (audio + self.config.diffusion_loss_weight * diffusion + hazard_weight * hazard
                 + self.config.text_loss_weight * text)
        return {"loss": total, "audio": audio, "diffusion": diffusion, "audio_mean": audio_mean, "hazard": hazard,
                "text": text}

    def onset_hazard_loss(self, logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The discrete-time survival likelihood of the agent's speech onsets, per at-risk step.

        logits (B, S, V + 1) and target codes (B, S) of codebook 0. A step is at risk when the agent
        was silent at the step before (a quiet code); there the binary event "it starts to speak now"
        (a voiced code) has probability 1 - the mass on the quiet codes, and this is its mean
        negative log-likelihood. It is already a part of the cross-entropy, a faint one: a hazard of
        0.003 per step while the human speaks costs 0.003 nats a step, yet over a 3 s question it
        means talking over the human one time in two; weighing this term lets training push it down.
        """
        quiet = torch.cat([self.audio_quiet[0], self.audio_quiet.new_zeros(1)])  # (V + 1,)
        voiced = torch.cat([~self.audio_quiet[0], self.audio_quiet.new_zeros(1)])  # the special token is neither
        log_p = torch.log_softmax(logits, dim=-1)
        log_quiet, log_voiced = masked_logsumexp(log_p, quiet), masked_logsumexp(log_p, voiced)  # (B, S)
        silent = quiet[codes]  # (B, S): the agent's own code is quiet
        at_risk = torch.cat([torch.zeros_like(silent[:, :1]), silent[:, :-1]], dim=1)
        nll = -torch.where(silent, log_quiet, log_voiced)
        return (nll * at_risk).sum() / at_risk.sum().clamp(min=1)

    # --- sampling ------------------------------------------------------------------------------

    def session(self, params: SamplingParams, prompt: torch.Tensor | None = None, identity: int | None = None,
                scene: torch.Tensor | None = None,
                use_cache: bool = True) -> StreamingSession:
        return StreamingSession(self, params, prompt=prompt, identity=identity, use_cache=use_cache, scene=scene)

    @torch.no_grad()
    def generate(self, frames: int, params: SamplingParams, human_audio: torch.Tensor | None = None,
                 human_visual: torch.Tensor | None = None, prompt: torch.Tensor | None = None,
                 trajectory: torch.Tensor | None = None, identity: int | None = None,
                 scene: torch.Tensor | None = None) -> Rollout:
        """Offline generation: a streaming session fed the human's recorded frames one by one.

        human_audio (K, >= (frames - 1) * R) codes, human_visual (>= frames - 1, L2h, Dh),
        trajectory (frames, J).
        """
        r = self.config.audio_frames_per_video_frame
        session = self.session(params, prompt=prompt, identity=identity, scene=scene)
        for i in range(frames):
            session.step(
                human_audio=None if human_audio is None or i == 0 else human_audio[:, (i - 1) * r : i * r],
                human_visual=None if human_visual is None or i == 0 else human_visual[i - 1],
                trajectory=None if trajectory is None else trajectory[i],
            )
        return session.rollout()

    def log_probs(self, rollouts: Rollout | Sequence[Rollout], params: SamplingParams | None = None
                  ) -> RolloutLogProbs:
        """Recompute rollouts' log-probabilities with one full forward (differentiable, for PPO);
        the monologue's text tokens too, for an agent with the text stream.

        Several rollouts (of the same length and number of denoising steps) are scored as one
        batch and the results gain a leading batch dimension. Every frame is scored under the
        parameters that sampled it (`Rollout.segments()`), so with the rollouts' own parameters the
        result equals the recorded values; `params` scores every frame under one other setting.
        Everything is computed on the rollouts' device.
        """
        single = isinstance(rollouts, Rollout)
        rollouts = [rollouts] if single else list(rollouts)
        if len({r.visual_chain.shape for r in rollouts}) > 1:
            raise ValueError("rollouts differ in length or denoising steps: score them separately")
        per_frame = self.config.audio_frames_per_video_frame
        out = self(AgentBatch.concat([r.to_batch() for r in rollouts]))
        logits = out.audio_logits.transpose(1, 2)  # (B, K, S, V + 1)
        if self.text_head is not None and any(r.text_tokens is None for r in rollouts):
            raise ValueError("the agent has a text stream but a rollout has no text tokens")
        audio, audio_sampling, temperatures, text, text_sampling = [], [], [], [], []
        for b, rollout in enumerate(rollouts):
            segments = ([(0, rollout.num_frames, params)] if params is not None else rollout.segments())
            full, sampling, temperature, text_full, text_picked = [], [], [], [], []
            for start, end, segment_params in segments:
                if out.text_logits is not None:
                    pair = text_token_log_probs(out.text_logits[b, start:end], rollout.text_tokens[start:end],
                                                segment_params)  # 2 x (n,)
                    text_full.append(pair[0])
                    text_picked.append(pair[1])
                steps = slice(start * per_frame, end * per_frame)
                pair = audio_token_log_probs(logits[b, :, steps], rollout.audio_tokens[:, steps],
                                             rollout.audio_sampled[:, steps], segment_params,
                                             None if self.audio_quiet is None else self.audio_quiet[:, None])  # 2 x (K, n)
                full.append(pair[0])
                sampling.append(pair[1])
                temperature += [segment_params.visual_temperature] * (end - start)
            audio.append(torch.cat(full, dim=1))
            audio_sampling.append(torch.cat(sampling, dim=1))
            temperatures.append(temperature)
            if out.text_logits is not None:
                text.append(torch.cat(text_full))
                text_sampling.append(torch.cat(text_picked))
        chains = torch.stack([r.visual_chain for r in rollouts])  # (B, T, steps + 1, L2, D)
        temperature = torch.tensor(temperatures, device=chains.device)[:, :, None]  # (B, T, 1): per frame
        visual = self.diffusion.chain_log_probs(out.visual_cond,  # (B, T, L2, H)
                                                chains.transpose(2, 3),  # (B, T, L2, steps + 1, D)
                                                temperature)  # (B, T, L2, steps - 1)
        result = RolloutLogProbs(audio=torch.stack(audio), visual=visual.transpose(2, 3),  # (B, T, steps - 1, L2)
                                 audio_sampling=torch.stack(audio_sampling),
                                 text=torch.stack(text) if text else None,
                                 text_sampling=torch.stack(text_sampling) if text else None)
        if single:
            return RolloutLogProbs(audio=result.audio[0], visual=result.visual[0],
                                   audio_sampling=result.audio_sampling[0],
                                   text=None if result.text is None else result.text[0],
                                   text_sampling=None if result.text is None else result.text_sampling[0])
        return result

    # --- checkpoints ---------------------------------------------------------------------------

    def save_pretrained(self, path: str | Path, card: dict | None = None) -> Path:
        """Write config.json, model.safetensors and the card (data, steps, metrics) to directory `path`."""
        return write_checkpoint(path, self.config.to_dict(), self.state_dict(), card)

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> "AgentModel":
        """A checkpoint directory, or a configuration name (`tiny`, `paper`, `debug`) for a new model."""
        if str(name_or_path) in NAMED_CONFIGS:
            return cls.from_config(AgentConfig.named(str(name_or_path)))
        config, state, _ = read_checkpoint(name_or_path)
        # The weights, the backbone's included, come from the checkpoint, not from backbone_path.
        model = cls(AgentConfig.from_dict(config))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # missing, unexpected or mis-shaped tensors
            raise ValueError(f"{name_or_path}: the weights do not match its config.json: {exc}") from exc
        return model.eval()
