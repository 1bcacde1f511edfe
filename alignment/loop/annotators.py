"""Simulated annotators working through the site over HTTP, as a person in a browser does.

Each logs in, asks for the next item, uploads a turn (the item's held-out corpus question, voiced
by espeak-ng and muxed into a small MP4 as a browser upload would be), polls the pair state until
both candidates are ready, opens the comparison page, downloads both candidate MP4s in full (the
site's playback evidence asks for ~all their bytes), judges them, waits until the longer clip has
had time to play, and votes through the vote endpoint.

What the judge reads (``clip_metrics``): the voice from the candidate MP4 itself (its audio
decoded with PyAV, the known human turn subtracted at the mix's gain), the motion from the
candidate's stored rollout (its visual tokens decoded to poses) read straight from the site's
media storage under ``candidates/<candidate>/<attempt>/rollout.safetensors``. That file path is
the only part no person gets, and only the simulator uses it: the clip shows rendered poses, and
recovering them from pixels would need a pose estimator the embedded mode does not have.

Hidden preferences come from ``alignment.simulate``: each annotator is a pool of one, careful or
noisy, leaning to the left clip or not (``LoopConfig.simulator``). Before a vote is sent its
judgement and ``submission_token`` go into the state file, so a run killed at any moment sends the
same vote again on restart (the site answers 200 with the saved comparison) and none is lost.
"""

from __future__ import annotations

import html
import math
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from alignment.loop.config import LoopConfig
from alignment.loop.site import Session, SiteError, expect
from alignment.loop.state import State
from alignment.simulate import SimulatedAnnotators
from model.data.dialogue import DialogueConfig
from model.evaluate import Kit, Turn, heldout_turn
from model.media import decode_audio, probe, write_mp4
from model.metrics import exchange_from_rollout, score_exchange
from model.respond import ResponseConfig
from model.rollout_store import rollout_from_bytes

TITLE = "Held-out question {index}"
TITLE_PATTERN = re.compile(r'<h1 id="scenario-title">Held-out question (\d+)</h1>')
MEDIA_PATTERN = re.compile(r'id="video-(left|right)"[^>]*src="(/label/media/response/([0-9a-f-]+)/)"')
TOKEN_PATTERN = re.compile(r'name="submission_token" value="([0-9a-f-]+)"')
ROUND_PATTERN = re.compile(r"/label/round/([0-9a-f-]+)/compare/")
POLL_SECONDS = 1.0
PLAY_SLACK_SECONDS = 0.5  # on top of the longer clip's duration, as a person's reaction time


@dataclass(frozen=True)
class Annotator:
    username: str
    password: str
    noisy: bool
    biased: bool


def pool(prefix: str, config: LoopConfig) -> list[Annotator]:
    """The campaign's annotators: the first noisy_share of them noisy, a biased_share leaning left
    (spread so that noisy and biased overlap as little as the shares allow)."""
    n = config.annotators
    noisy, biased = round(config.noisy_share * n), round(config.biased_share * n)
    return [Annotator(f"{prefix}-{i + 1}", f"{prefix}-{i + 1}-sim-password", noisy=i < noisy, biased=n - i <= biased)
            for i in range(n)]


def scenarios(questions: range, kit: Kit) -> list[dict]:
    """One scenario per held-out corpus question: what to ask, the agent's prompt, identity and the
    clip's scene (the objects the judge scores manipulation against, so the agent sees them too)."""
    out = []
    for index in questions:
        turn = heldout_turn(index, kit.codec)
        out.append({"title": TITLE.format(index=index), "instructions": "Ask the agent the corpus question "
                    f"{index} of the held-out set.", "agent_prompt": turn.prompt, "identity": turn.identity,
                    "scene_objects": [{"kind": o.kind, "position": [float(x) for x in o.position],
                                       "colour": [int(c) for c in o.colour], "size": float(o.size)}
                                      for o in turn.objects]})
    return out


class Judge:
    """Metrics of the clips a simulated annotator is shown (see the module docstring)."""

    def __init__(self, kit: Kit, media_root: Path):
        self.kit, self.media_root = kit, media_root
        self.turns: dict[int, Turn] = {}
        self.lock = threading.Lock()  # pocketsphinx decoders and the turn cache are not shared across threads

    def turn(self, index: int) -> Turn:
        with self.lock:
            if index not in self.turns:
                self.turns[index] = heldout_turn(index, self.kit.codec)
            return self.turns[index]

    def upload_clip(self, index: int) -> bytes:
        """The turn as a browser would upload it: a small MP4 (a still grey picture, the voice)."""
        turn = self.turn(index)
        fps, rate = 12, self.kit.codec.sample_rate
        frames = np.full((max(1, math.ceil(turn.human_wave.size / rate * fps)), 96, 128, 3), 96, dtype=np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "turn.mp4"
            write_mp4(path, frames, fps, turn.human_wave, rate)
            return path.read_bytes()

    def rollout_path(self, candidate: str) -> Path:
        """The stored rollout of the candidate's current clip: the newest attempt that has one."""
        attempts = sorted((p for p in (self.media_root / "candidates" / candidate).glob("*/rollout.safetensors")),
                          key=lambda p: int(p.parent.name))
        if not attempts:
            raise SiteError(f"candidate {candidate} has no stored rollout under {self.media_root}")
        return attempts[-1]

    def clip_metrics(self, index: int, candidate: str, mp4: bytes) -> tuple[dict[str, float], float]:
        """(behaviour metrics, duration in seconds) of one candidate clip on turn ``index``."""
        turn, codec = self.turn(index), self.kit.codec
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "response.mp4"
            path.write_bytes(mp4)
            duration = probe(path).duration
            mixed = decode_audio(path, codec.sample_rate)
        rollout = rollout_from_bytes(self.rollout_path(candidate).read_bytes())
        exchange = exchange_from_rollout(rollout, codec, turn.human_wave, prompt=turn.prompt, identity=turn.identity,
                                         objects=turn.objects, answer=turn.answer, fps=DialogueConfig().fps)
        exchange = replace(exchange, agent_wave=demix(mixed, turn.human_wave, ResponseConfig().human_gain))
        with self.lock:
            score = score_exchange(exchange, self.kit.recognizers, self.kit.motion_reference)
        return score.metrics, duration


def demix(mixed: np.ndarray, human: np.ndarray, gain: float) -> np.ndarray:
    """The agent's voice from a clip's mix ``s * (agent + gain * human)`` (s <= 1 when the mix was
    peak-normalised), knowing the human's turn: s from the mix's projection on the turn (the two
    voices are uncorrelated), then the turn taken out."""
    timeline = np.zeros_like(mixed)
    n = min(human.size, mixed.size)
    timeline[:n] = human[:n]
    energy = float(np.dot(timeline, timeline))
    scale = float(np.clip(np.dot(mixed, timeline) / (gain * energy), 1e-3, 1.0)) if energy > 0 else 1.0
    return (mixed / scale - gain * timeline).astype(np.float32)


class Campaign:
    """One campaign's annotation: the pool works until no item is left for anyone."""

    def __init__(self, key: str, number: int, base: str, config: LoopConfig, judge: Judge, state: State,
                 dimensions: list[str], expected_votes: int):
        self.key, self.number, self.base, self.config, self.judge, self.state = key, number, base, config, judge, state
        self.dimensions, self.expected = dimensions, expected_votes
        with state.update() as data:
            self.record = data["stages"].setdefault(key, {}).setdefault("votes", {})
        self.bar: tqdm | None = None

    def run(self, annotators: list[Annotator]) -> dict:
        quota = math.ceil(self.expected / len(annotators))
        self.bar = tqdm(total=self.expected, initial=sum(1 for v in self.record.values() if v.get("comparison")),
                        desc=f"{self.key} votes", unit="vote")
        try:
            for limit in (quota, None):  # a second pass picks up items someone gave back
                with ThreadPoolExecutor(self.config.parallel) as threads:
                    for done in [threads.submit(self.work, a, limit) for a in annotators]:
                        done.result()
        finally:
            self.bar.close()
        return self.record

    def work(self, annotator: Annotator, limit: int | None) -> None:
        session = Session(self.base)
        session.log_in(annotator.username, annotator.password)
        simulator = SimulatedAnnotators(self.config.simulator(annotator.noisy, annotator.biased))
        rng = np.random.default_rng([self.config.seed, self.number, int(annotator.username.rsplit("-", 1)[1])])
        done = 0
        while limit is None or done < limit:
            answer = expect(session.post_form("/label/next/", {}, {"Accept": "application/json"}), 200, "next item")
            item = answer.json()["item"]
            if item is None:
                return
            if self.item(session, annotator, simulator, rng, item):
                done += 1

    def item(self, session: Session, annotator: Annotator, simulator: SimulatedAnnotators,
             rng: np.random.Generator, item: dict) -> bool:
        """Work one held item to its vote; False when it was given back (a candidate failed)."""
        page = session.get(item["url"])
        if page.status == 302 and "/compare/" in page.location:
            return self.compare(session, annotator, simulator, rng, page.location)
        expect(page, 200, f"item {item['assignment']}")
        status_url = html.unescape(re.search(r'data-status-url="([^"]*)"', page.text).group(1))
        if not status_url:
            index = int(TITLE_PATTERN.search(page.text).group(1))
            upload = session.post_multipart(f"/label/item/{item['assignment']}/upload/", {"source": "uploaded"},
                                            {"media": ("turn.mp4", self.judge.upload_clip(index), "video/mp4")})
            status_url = expect(upload, 201, "upload").json()["status_url"]
        deadline = time.monotonic() + self.config.stage_timeout
        while True:
            pair = session.get_json(status_url)
            if pair["ready"]:
                return self.compare(session, annotator, simulator, rng, pair["compare_url"])
            if pair["failed"]:
                expect(session.post_form(f"/label/item/{item['assignment']}/release/", {},
                                         {"Accept": "application/json"}), 200, "release")
                return False
            if time.monotonic() > deadline:
                raise SiteError(f"the candidates of {status_url} were not ready within {self.config.stage_timeout:.0f} s")
            time.sleep(POLL_SECONDS)

    def compare(self, session: Session, annotator: Annotator, simulator: SimulatedAnnotators,
                rng: np.random.Generator, compare_url: str) -> bool:
        round_id = ROUND_PATTERN.search(compare_url).group(1)
        vote_url = f"/label/round/{round_id}/vote/"
        pending = self.record.get(round_id)
        page = session.get(compare_url)
        opened = time.monotonic()
        if page.status == 302:  # the vote was saved before a kill: send it again for its comparison id
            if pending is None:
                raise SiteError(f"round {round_id} has a saved vote this run never sent")
            return self.send(session, vote_url, round_id, pending, 0.0)
        expect(page, 200, f"compare {round_id}")
        index = int(TITLE_PATTERN.search(page.text).group(1))
        clips = {side: (url, candidate) for side, url, candidate in MEDIA_PATTERN.findall(page.text)}
        fetched = {side: expect(session.get(url), 200, f"clip {side}").body for side, (url, _) in clips.items()}
        if pending is None:
            judged = {side: self.judge.clip_metrics(index, clips[side][1], fetched[side]) for side in ("left", "right")}
            judgement = simulator.judge(judged["left"][0], judged["right"][0], rng)
            labels = {d: judgement.labels.get(d, "na") for d in self.dimensions}
            pending = {
                "annotator": annotator.username, "noisy": annotator.noisy, "biased": annotator.biased,
                "question": index, "token": TOKEN_PATTERN.search(page.text).group(1),
                "candidates": {side: clips[side][1] for side in clips},
                "metrics": {side: judged[side][0] for side in judged},
                "durations": {side: judged[side][1] for side in judged},
                "fields": {**labels, "overall": judgement.overall, "strength": judgement.strength,
                           "confidence": judgement.confidence, "plays_a": 1, "plays_b": 1},
            }
            with self.state.update():
                self.record[round_id] = pending
        wait = max(pending["durations"].values()) + PLAY_SLACK_SECONDS - (time.monotonic() - opened)
        return self.send(session, vote_url, round_id, pending, wait)

    def send(self, session: Session, vote_url: str, round_id: str, pending: dict, wait: float) -> bool:
        if wait > 0:
            time.sleep(wait)  # the clips play
        fields = {**pending["fields"], "submission_token": pending["token"],
                  "time_spent_ms": int(1000 * (max(pending["durations"].values()) + PLAY_SLACK_SECONDS))}
        for _ in range(10):
            answer = session.post_form(vote_url, fields, {"Accept": "application/json"})
            if answer.status in (200, 201):
                with self.state.update():
                    pending["comparison"] = answer.json()["comparison"]
                if self.bar is not None:
                    self.bar.update(1)
                return True
            if answer.status == 400 and "after the comparison page opened" in answer.text:
                time.sleep(1.0)  # the server's clock says the clips are still playing
                continue
            expect(answer, (200, 201), f"vote on {round_id}")
        raise SiteError(f"the vote on round {round_id} kept being refused: {answer.text[:300]}")
