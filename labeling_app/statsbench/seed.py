"""Write a campaign with ``n`` comparisons straight in SQL (generate_series), PostgreSQL only.

Every row a real vote would have: assignment, round, two candidates, comparison, with random
sides, variant A preferred 55:35 (10% ties), times of 5-60 s, ``overlap`` annotators per
scenario; annotator 0 always picks the left clip and annotator 1 answers in under 2 s.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, transaction

from labeling_app.models import (
    AgentVariant,
    Assignment,
    Campaign,
    Candidate,
    Comparison,
    Round,
    Scenario,
)
from labeling_app.roles import ANNOTATOR


def _table(model) -> str:
    return model._meta.db_table


@transaction.atomic
def seed(n: int, overlap: int = 3, annotators: int = 200) -> Campaign:
    suffix = uuid.uuid4().hex[:6]
    a = AgentVariant.objects.create(name=f"bench-a-{suffix}")
    b = AgentVariant.objects.create(name=f"bench-b-{suffix}", audio_temperature=0.7)
    campaign = Campaign.objects.create(name="Statistics benchmark", slug=f"statsbench-{suffix}", variant_a=a,
                                       variant_b=b, overlap=overlap, status=Campaign.Status.ACTIVE)
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"bench-{suffix}-{i:03d}", password=make_password(None))
                                      for i in range(annotators)])
    Group.objects.get(name=ANNOTATOR).user_set.add(*users)
    first_user = users[0].pk  # bulk_create on PostgreSQL returns consecutive ids in order
    assert users[-1].pk - first_user == annotators - 1
    scenarios = -(-n // overlap)
    with connection.cursor() as cur:
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {_table(Scenario)}")
        s0 = cur.fetchone()[0]
        cur.execute(f"""INSERT INTO {_table(Scenario)} (id, campaign_id, title, instructions, agent_prompt, scene_objects,
                        identity, position, created_at)
                        SELECT {s0} + s, %s, 'item ' || s, 'Say hello.', '', '[]', 0, s, now()
                        FROM generate_series(1, %s) s""", [campaign.pk, scenarios])
        ids = {}
        for model in (Assignment, Round, Candidate, Comparison):
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {_table(model)}")
            ids[model] = cur.fetchone()[0]
        # One row per vote i: scenario, annotator (distinct within a scenario), side, preferences.
        cur.execute(f"""CREATE TEMP TABLE bench_votes ON COMMIT DROP AS
            SELECT i,
                   {s0} + 1 + (i - 1) / {overlap} AS scenario,
                   {first_user} + (((i - 1) / {overlap}) * 7 + (i - 1) %% {overlap}) %% {annotators} AS annotator,
                   random() < 0.5 AS a_left,
                   now() - (random() * interval '30 days') AS at,
                   random() AS r0, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
                   (5000 + random() * 55000)::int AS ms
            FROM generate_series(1, %s) i""", [n])
        cur.execute(f"UPDATE bench_votes SET ms = 1500 WHERE annotator = {first_user + 1}")
        cur.execute(f"""INSERT INTO {_table(Assignment)} (id, scenario_id, annotator_id, status, created_at, expires_at, completed_at)
            SELECT {ids[Assignment]} + i, scenario, annotator, 'completed', at, at, at FROM bench_votes""")
        cur.execute(f"""INSERT INTO {_table(Round)} (id, public_id, assignment_id, annotator_id, scenario_id, source, media,
                        media_extension, media_sha256, size_bytes, container, duration_seconds, has_audio, has_video,
                        variant_a_on_left, created_at)
            SELECT {ids[Round]} + i, gen_random_uuid(), {ids[Assignment]} + i, annotator, scenario, 'uploaded',
                   'rounds/bench.webm', 'webm', repeat('0', 64), 1, 'webm', 2.0, true, true, a_left, at FROM bench_votes""")
        cur.execute(f"""INSERT INTO {_table(Candidate)} (id, public_id, round_id, variant_id, seed, status, progress, attempts,
                        worker, media, tokens, error, queued_at)
            SELECT {ids[Candidate]} + 2 * i - 1 + k, gen_random_uuid(), {ids[Round]} + i,
                   CASE WHEN k = 0 THEN {a.pk} ELSE {b.pk} END, i, 'ready', 1.0, 1, 'bench', '', '', '', at
            FROM bench_votes, generate_series(0, 1) k""")

        def side(r: str) -> str:
            # the preferred variant as a side: A with 55%, B with 35%, tie 10%; annotator 0 picks left
            return (f"CASE WHEN annotator = {first_user} THEN 'a' WHEN {r} >= 0.9 THEN 'tie' "
                    f"WHEN ({r} < 0.55) = a_left THEN 'a' ELSE 'b' END")

        dims = ["speaking", "listening", "manipulation", "identity", "qa_safety"]
        cur.execute(f"""INSERT INTO {_table(Comparison)} (id, public_id, submission_token, annotator_id, scenario_id, round_id,
                        candidate_a_id, candidate_b_id, {", ".join(dims)}, overall, strength, confidence, rationale,
                        time_spent_ms, plays_a, plays_b, submitted_at)
            SELECT {ids[Comparison]} + i, gen_random_uuid(), gen_random_uuid(), annotator, scenario, {ids[Round]} + i,
                   {ids[Candidate]} + 2 * i - CASE WHEN a_left THEN 1 ELSE 0 END,
                   {ids[Candidate]} + 2 * i - CASE WHEN a_left THEN 0 ELSE 1 END,
                   {", ".join(side(f"r{k + 1}") for k in range(5))}, {side("r0")},
                   CASE WHEN {side("r0")} = 'tie' THEN 1 ELSE 2 END, 3, '', ms, 1, 1, at FROM bench_votes""")
        for model in (Scenario, Assignment, Round, Candidate, Comparison):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{_table(model)}', 'id'), (SELECT MAX(id) FROM {_table(model)}))")
    return campaign
