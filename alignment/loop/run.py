"""The five stages of one RLHF iteration through the deployment, each recorded in the state file.

    1-campaign        users, two variants of the default agent, a campaign pairing them (manage.py setup_campaign)
    2-annotate        simulated annotators record, wait, watch and vote (HTTP)
    3-train           an engineer freezes a snapshot, runs a reward-model job, then a PPO job (the /jobs/ pages)
    4-child-campaign  the PPO policy (registered by the worker as a variant) against its parent
    5-judge-child     fresh simulated annotators judge it; a lead reads both campaigns' statistics (REST API)

``run`` starts ``manage.py serve``, skips the stages the state file records as done, and
writes the report after the last one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from alignment.loop import annotators as annotation
from alignment.loop.config import JUDGED_BY, LoopConfig
from alignment.loop.engineer import NEW_VARIANT, Engineer, Lead, options
from alignment.loop.report import write_report
from alignment.loop.site import Deployment, Session, free_port
from alignment.loop.state import State
from model.evaluate import load_kit

PARENT, OTHER = "loop-default-t1", "loop-default-t{:g}"
STAFF = {"engineer": ("loop-engineer", "loop-engineer-password"), "lead": ("loop-lead", "loop-lead-password")}
DIMENSIONS = sorted(JUDGED_BY)
STAGES = ("1-campaign", "2-annotate", "3-train", "4-child-campaign", "5-judge-child")


class Loop:
    def __init__(self, config: LoopConfig):
        self.config = config
        config.out.mkdir(parents=True, exist_ok=True)
        self.state = State.open(config.out / "state.json", config.as_dict())
        with self.state.update() as data:
            data.setdefault("port", config.port or free_port())
        self.site = Deployment(config.out / "var", self.state.data["port"], config.worker_concurrency,
                               config.out / "serve.log")
        self._kit = None
        self._judge = None

    @property
    def kit(self):
        if self._kit is None:
            self._kit = load_kit()
        return self._kit

    def run(self) -> dict:
        self.site.start()
        try:
            for name, stage in zip(STAGES, (self.campaign, self.annotate_first, self.train, self.child_campaign,
                                            self.judge_child)):
                self._stage(name, stage)
            return write_report(self.config, self.state, self.results())
        finally:
            self.site.stop()

    def _stage(self, name: str, body: Callable[[dict], None]) -> None:
        if self.state.done(name):
            return
        record = self.state.stage(name)
        with self.state.update():
            record.setdefault("first_started", time.time())
            record["runs"] = record.get("runs", 0) + 1
        started = time.monotonic()
        print(f"loop: stage {name}", flush=True)
        body(record)
        with self.state.update():
            record["seconds"] = time.monotonic() - started  # this run's; wall_seconds counts from the first start
            record["finished"] = time.time()
            record["wall_seconds"] = record["finished"] - record["first_started"]

    def session(self, role: str) -> Session:
        session = Session(self.site.base)
        session.log_in(*STAFF[role])
        return session

    def setup(self, spec: dict) -> dict:
        return json.loads(self.site.manage("setup_campaign", "-", stdin=json.dumps(spec)).strip().splitlines()[-1])

    def users(self, prefix: str) -> list[dict]:
        return [{"username": a.username, "password": a.password, "role": "annotator"}
                for a in annotation.pool(prefix, self.config)]

    def questions(self, number: int) -> range:
        """The held-out questions of campaign ``number``: the second's follow the first's."""
        c = self.config
        return range(c.rounds) if number == 1 else range(c.rounds, c.rounds + c.child_rounds)

    def campaign_spec(self, number: int, name: str, variant_a: str, variant_b: str) -> dict:
        return {"slug": f"loop-{number}", "name": name, "variant_a": variant_a, "variant_b": variant_b,
                "overlap": self.config.overlap, "dimensions": DIMENSIONS,
                "guidelines": "Simulated annotators of python -m alignment.loop.",
                "scenarios": annotation.scenarios(self.questions(number), self.kit)}

    # 1 ------------------------------------------------------------------------------------------
    def campaign(self, record: dict) -> None:
        t, steps = self.config.other_temperature, self.config.diffusion_steps
        staff = [{"username": u, "password": p, "role": role} for role, (u, p) in STAFF.items()]
        made = self.setup({
            "users": staff + self.users("sim1"),
            "variants": [{"name": PARENT, "checkpoint": "default", "diffusion_steps": steps,
                          "description": "The default agent at temperature 1."},
                         {"name": OTHER.format(t).replace(".", ""), "checkpoint": "default",
                          "audio_temperature": t, "visual_temperature": t, "diffusion_steps": steps,
                          "description": f"The default agent at temperature {t:g}."}],
            "campaign": self.campaign_spec(1, "Loop 1: the default agent at two temperatures", PARENT,
                                           OTHER.format(t).replace(".", "")),
        })
        with self.state.update():
            record.update(campaign=made["campaign"], variants=made["variants"])

    # 2, 5 ---------------------------------------------------------------------------------------
    def annotate(self, record: dict, stage: str, key: str, number: int, prefix: str) -> None:
        campaign = self.state.stage(key)["campaign"]
        judge = annotation.Judge(self.kit, self.site.var_dir / "media")
        expected = len(self.questions(number)) * self.config.overlap
        work = annotation.Campaign(stage, number, self.site.base, self.config, judge, self.state,
                                   DIMENSIONS, expected)
        work.run(annotation.pool(prefix, self.config))
        lead = Lead(self.session("lead"))
        with self.state.update():
            record["comparisons"] = len(lead.listing(f"/api/comparisons/?campaign={campaign['id']}"))

    def annotate_first(self, record: dict) -> None:
        self.annotate(record, "2-annotate", "1-campaign", 1, "sim1")

    def judge_child(self, record: dict) -> None:
        self.annotate(record, "5-judge-child", "4-child-campaign", 2, "sim2")

    # 3 ------------------------------------------------------------------------------------------
    def train(self, record: dict) -> None:
        c = self.config
        first = self.state.stage("1-campaign")
        engineer, lead = Engineer(self.session("engineer")), Lead(self.session("lead"))
        if "snapshot" not in record:
            started = time.monotonic()
            engineer.freeze_snapshot(first["campaign"]["id"], "loop-1-votes")
            page = engineer.session.get("/jobs/").text
            with self.state.update():
                record["snapshot"] = options(page, "job-snapshot")["loop-1-votes"]
                record["snapshot_seconds"] = time.monotonic() - started
        parent = first["variants"][PARENT]
        reward = self.job(record, "reward", engineer, lead, {
            "kind": "reward", "base_variant": parent, "snapshot": record["snapshot"], "ranks": c.ranks, "seed": c.seed,
            "learning_rate": c.reward_learning_rate, "num_train_epochs": c.reward_epochs,
            "per_device_train_batch_size": c.reward_batch_size, "validation_fraction": c.reward_validation_fraction})
        ppo = self.job(record, "ppo", engineer, lead, {
            "kind": "ppo", "base_variant": parent, "snapshot": record["snapshot"], "reward_job": reward["id"],
            "ranks": c.ranks, "seed": c.seed, "learning_rate": c.ppo_learning_rate, "total_steps": c.ppo_steps,
            "batch_size": c.ppo_batch_size, "mini_batch_size": c.ppo_mini_batch_size, "kl_coef": c.ppo_kl_coef,
            "episode_frames": c.ppo_episode_frames})
        with self.state.update():
            record["child"] = NEW_VARIANT.search(ppo.pop("page")).group(1)
            reward.pop("page")

    def job(self, record: dict, kind: str, engineer: Engineer, lead: Lead, fields: dict) -> dict:
        """Launch the job once (a launch the state file missed is found in the job list) and follow it."""
        if kind not in record:
            existing = [j for j in lead.listing("/api/jobs/") if j["kind"] == kind and j["snapshot"] == fields["snapshot"]
                        and j["base_variant"] == fields["base_variant"] and j["status"] not in ("failed", "cancelled")]
            job_id = existing[0]["id"] if existing else engineer.launch(fields)
            with self.state.update():
                record[kind] = {"id": job_id, "launched": time.time()}
        job = record[kind]
        page = engineer.wait(job["id"], self.config.stage_timeout)
        row = lead.session.get_json(f"/api/jobs/{job['id']}/")
        with self.state.update():
            job.update(output_dir=row["output_dir"], attempts=row["attempts"], started_at=row["started_at"],
                       finished_at=row["finished_at"], config=row["config"])
        return {**job, "page": page}

    # 4 ------------------------------------------------------------------------------------------
    def child_campaign(self, record: dict) -> None:
        child = self.state.stage("3-train")["child"]
        made = self.setup({"users": self.users("sim2"), "close": ["loop-1"],
                           "campaign": self.campaign_spec(2, f"Loop 2: {child} against its parent", child, PARENT)})
        with self.state.update():
            record.update(campaign=made["campaign"], variants=made["variants"])

    # report ---------------------------------------------------------------------------------------
    def results(self) -> dict:
        """What the lead's API says about both campaigns: statistics and every comparison."""
        lead = Lead(self.session("lead"))
        out = {}
        for number, key in ((1, "1-campaign"), (2, "4-child-campaign")):
            campaign = self.state.stage(key)["campaign"]
            comparisons = lead.listing(f"/api/comparisons/?campaign={campaign['id']}")
            stats = lead.statistics(campaign["id"], len(comparisons), self.config.stage_timeout)
            out[number] = {"campaign": campaign, "comparisons": comparisons, "statistics": stats,
                           "variants": {v["id"]: v for v in lead.listing("/api/variants/")}}
        return out

