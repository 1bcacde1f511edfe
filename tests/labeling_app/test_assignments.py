"""Handing out items: expiring locks, N-way overlap, never twice to one annotator, under races."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from labeling_app.actions.assignments import do_claim_next_assignment, do_release_assignment
from labeling_app.actions.candidates import do_claim_candidate, do_complete_candidate
from labeling_app.models import Assignment, Campaign, Candidate, Comparison
from labeling_app.roles import ANNOTATOR
from tests.labeling_app.conftest import make_campaign, make_clip, make_user, play_both, run_together, vote_data


def expire(assignment: Assignment) -> None:
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db
class TestClaim:
    def test_an_item_is_claimed_with_a_lock_of_the_campaigns_length(self, annotator):
        campaign = make_campaign(lock_minutes=7)
        before = timezone.now()
        assignment, resumed = do_claim_next_assignment(annotator)
        assert not resumed
        assert assignment.scenario == campaign.scenarios.get() and assignment.status == "active"
        assert timedelta(minutes=7) <= assignment.expires_at - before < timedelta(minutes=7, seconds=5)

    def test_the_annotators_own_active_item_is_resumed_first(self, annotator):
        make_campaign(scenarios=3)
        first, _ = do_claim_next_assignment(annotator)
        again, resumed = do_claim_next_assignment(annotator)
        assert resumed and again == first
        assert Assignment.objects.count() == 1

    def test_items_come_in_campaign_order(self, annotator):
        campaign = make_campaign(scenarios=3)
        titles = []
        for _ in range(3):
            assignment, _ = do_claim_next_assignment(annotator)
            titles.append(assignment.scenario.title)
            Assignment.objects.filter(pk=assignment.pk).update(status="completed")
        assert titles == ["Scenario 0", "Scenario 1", "Scenario 2"]
        assert do_claim_next_assignment(annotator) == (None, False)
        assert campaign.scenarios.count() == 3

    def test_overlap_lets_exactly_that_many_annotators_hold_an_item(self):
        make_campaign(overlap=2)
        users = [make_user(ANNOTATOR) for _ in range(3)]
        got = [do_claim_next_assignment(user)[0] for user in users]
        assert got[0] is not None and got[1] is not None and got[2] is None
        assert got[0].scenario_id == got[1].scenario_id

    def test_an_annotator_never_gets_an_item_twice(self, annotator):
        make_campaign(overlap=3, scenarios=1)
        assignment, _ = do_claim_next_assignment(annotator)
        Assignment.objects.filter(pk=assignment.pk).update(status="completed")
        assert do_claim_next_assignment(annotator) == (None, False)

    def test_inactive_campaigns_hand_out_nothing(self, annotator):
        campaign = make_campaign()
        for status in (Campaign.Status.DRAFT, Campaign.Status.PAUSED, Campaign.Status.CLOSED):
            Campaign.objects.filter(pk=campaign.pk).update(status=status)
            assert do_claim_next_assignment(annotator) == (None, False)

    def test_after_expiry_another_annotator_gets_the_item_and_the_first_never_again(
        self, annotator, other_annotator
    ):
        make_campaign(overlap=1, scenarios=1)
        first, _ = do_claim_next_assignment(annotator)
        assert do_claim_next_assignment(other_annotator) == (None, False)  # held
        expire(first)
        second, _ = do_claim_next_assignment(other_annotator)
        assert second is not None and second.scenario_id == first.scenario_id
        assert do_claim_next_assignment(annotator) == (None, False)
        first.refresh_from_db()
        assert first.status == "expired"
        # Even when the second annotator's lock expires too, the first does not get it back.
        expire(second)
        assert do_claim_next_assignment(annotator) == (None, False)

    def test_a_released_item_goes_to_someone_else_and_not_back(self, annotator, other_annotator):
        make_campaign(overlap=1, scenarios=1)
        first, _ = do_claim_next_assignment(annotator)
        do_release_assignment(first.pk, annotator)
        assert do_claim_next_assignment(other_annotator)[0].scenario_id == first.scenario_id
        assert do_claim_next_assignment(annotator) == (None, False)


@pytest.mark.django_db
class TestLateWork:
    """An expired lock is forgiven while the slot is still free, refused once it was taken."""

    @pytest.fixture
    def upload(self, client, media_root):
        clip = make_clip()

        def post(user, assignment):
            client.force_login(user)
            return client.post(
                reverse("labeling:upload", args=[assignment.pk]),
                {"media": SimpleUploadedFile("t.webm", clip), "source": "recorded"},
            )

        return post

    def test_an_expired_lock_whose_slot_is_free_is_renewed_on_upload(self, annotator, upload):
        make_campaign(overlap=1, lock_minutes=5)
        assignment, _ = do_claim_next_assignment(annotator)
        expire(assignment)
        assert upload(annotator, assignment).status_code == 201
        assignment.refresh_from_db()
        assert assignment.expires_at > timezone.now() + timedelta(minutes=4)

    def test_next_resumes_ones_own_lapsed_item_while_its_slot_is_free(self, annotator, other_annotator):
        make_campaign(overlap=1, lock_minutes=5, scenarios=2)
        first, _ = do_claim_next_assignment(annotator)
        expire(first)
        again, resumed = do_claim_next_assignment(annotator)
        assert resumed and again.pk == first.pk and again.status == "active"
        assert again.expires_at > timezone.now() + timedelta(minutes=4)
        # Once someone else took the freed slot, "next" loses it and hands out the next item.
        expire(first)
        assert do_claim_next_assignment(other_annotator)[0].scenario_id == first.scenario_id
        following, resumed = do_claim_next_assignment(annotator)
        assert not resumed and following.scenario_id != first.scenario_id
        first.refresh_from_db()
        assert first.status == "expired"

    def test_an_upload_after_the_item_went_to_someone_else_is_refused(self, annotator, other_annotator, upload):
        make_campaign(overlap=1, lock_minutes=5)
        assignment, _ = do_claim_next_assignment(annotator)
        expire(assignment)
        assert do_claim_next_assignment(other_annotator)[0] is not None
        response = upload(annotator, assignment)
        assert response.status_code == 409
        assert response.json()["error"] == (
            "Your time on this item (5 minutes) ran out and another annotator took it. Go on to the next item."
        )


def finish_sampling(round_pk: int) -> None:
    """What a worker does to each candidate of the round: claim it, store its clip, mark it ready."""
    for candidate in Candidate.objects.filter(round_id=round_pk):
        attempt, _ = do_claim_candidate(candidate.pk, worker="test-worker")
        name = default_storage.save(f"candidates/{candidate.public_id}/response.mp4",
                                    ContentFile(make_clip(container="mp4")))
        assert do_complete_candidate(attempt, media_name=name, tokens_name="",
                                     duration_seconds=2.0, sample_seconds=1.0, render_seconds=1.0)


@pytest.mark.django_db
class TestLockWhileSampling:
    """Sampling time is not the annotator's time: the item stays theirs until the responses are
    ready, and then the lock starts again."""

    def test_an_annotator_whose_sampling_outlasts_the_lock_still_gets_to_vote(
        self, client, annotator, other_annotator, media_root
    ):
        make_campaign(overlap=1, lock_minutes=5)
        assignment, _ = do_claim_next_assignment(annotator)
        client.force_login(annotator)
        upload = client.post(reverse("labeling:upload", args=[assignment.pk]),
                             {"media": SimpleUploadedFile("t.webm", make_clip()), "source": "recorded"})
        assert upload.status_code == 201
        round_pk = Assignment.objects.get(pk=assignment.pk).round.pk
        expire(assignment)  # the workers took longer than the lock

        assert do_claim_next_assignment(other_annotator) == (None, False)  # still held: sampling
        finish_sampling(round_pk)
        assignment.refresh_from_db()
        assert assignment.expires_at > timezone.now() + timedelta(minutes=4)  # a full lock again
        assert do_claim_next_assignment(other_annotator) == (None, False)

        round_id = upload.json()["round"]
        page = client.get(reverse("labeling:compare", args=[round_id]))
        assert page.status_code == 200
        play_both(client, round_id)
        response = client.post(reverse("labeling:vote", args=[round_id]), vote_data(),
                               HTTP_ACCEPT="application/json")
        assert response.status_code == 201, response.content
        assert Comparison.objects.filter(round_id=round_pk, annotator=annotator).count() == 1

    def test_a_queued_round_holds_its_item_against_other_claimers(self, annotator, other_annotator, client,
                                                                   media_root):
        make_campaign(overlap=1, lock_minutes=5)
        assignment, _ = do_claim_next_assignment(annotator)
        client.force_login(annotator)
        client.post(reverse("labeling:upload", args=[assignment.pk]),
                    {"media": SimpleUploadedFile("t.webm", make_clip()), "source": "recorded"})
        expire(assignment)
        Candidate.objects.filter(round__assignment=assignment).update(status="ready")
        # Once nothing is being sampled, the lapsed lock frees the slot as any other would.
        assert do_claim_next_assignment(other_annotator)[0].scenario_id == assignment.scenario_id


@pytest.mark.django_db
class TestNextItemEndpoint:
    def test_json_clients_get_the_item_url(self, client, annotator):
        make_campaign()
        client.force_login(annotator)
        response = client.post(reverse("labeling:next"), HTTP_ACCEPT="application/json")
        assignment = Assignment.objects.get()
        assert response.status_code == 200
        assert response.json() == {"item": {
            "assignment": assignment.pk, "url": reverse("labeling:item", args=[assignment.pk]),
            "resumed": False, "expires_at": assignment.expires_at.isoformat(),
        }}
        assert client.post(reverse("labeling:next"), HTTP_ACCEPT="application/json").json()["item"]["resumed"]

    def test_a_page_is_redirected_to_the_item(self, client, annotator):
        make_campaign()
        client.force_login(annotator)
        response = client.post(reverse("labeling:next"))
        assert response.status_code == 302
        assert response["Location"] == reverse("labeling:item", args=[Assignment.objects.get().pk])

    def test_no_item_says_so(self, client, annotator):
        client.force_login(annotator)
        assert client.post(reverse("labeling:next"), HTTP_ACCEPT="application/json").json() == {
            "item": None, "message": "No item is waiting for you right now. Thank you! Check again later.",
        }
        page = client.post(reverse("labeling:next"))
        assert page.status_code == 200 and b"No item is waiting for you right now." in page.content

    def test_get_is_not_allowed(self, client, annotator):
        client.force_login(annotator)
        assert client.get(reverse("labeling:next")).status_code == 405

    @pytest.mark.parametrize("scenarios, others", [(1, 0), (40, 25)])
    def test_the_claim_costs_a_small_constant_number_of_queries(
        self, client, annotator, django_assert_max_num_queries, scenarios, others
    ):
        make_campaign(overlap=2, scenarios=scenarios)
        for _ in range(others):  # other annotators' assignments must not add queries
            do_claim_next_assignment(make_user(ANNOTATOR))
        client.force_login(annotator)
        with django_assert_max_num_queries(13):  # 12, and one look for a free review item
            response = client.post(reverse("labeling:next"), HTTP_ACCEPT="application/json")
        assert response.json()["item"] is not None
        # Resuming: the user's active flag and password (session and user are cached) and the item.
        with django_assert_max_num_queries(2):
            assert client.post(reverse("labeling:next"), HTTP_ACCEPT="application/json").json()["item"]["resumed"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("overlap, claimers", [(1, 2), (2, 4)])
def test_concurrent_claims_never_exceed_the_overlap(overlap, claimers):
    make_campaign(overlap=overlap, scenarios=1)
    users = [make_user(ANNOTATOR) for _ in range(claimers)]
    for attempt in range(3):  # a race that slips through once in a while should still show
        if attempt:
            Assignment.objects.all().delete()
        results = run_together([lambda user=user: do_claim_next_assignment(user)[0] for user in users])
        winners = [assignment for assignment in results if assignment is not None]
        assert len(winners) == overlap
        assert Assignment.objects.count() == overlap
        assert len({a.annotator_id for a in winners}) == overlap


@pytest.mark.django_db(transaction=True)
def test_under_contention_every_claimer_gets_an_item_while_one_is_free():
    """As many claimers as free slots, all at once: nobody is told "no item"."""
    make_campaign(overlap=2, scenarios=6)
    users = [make_user(ANNOTATOR) for _ in range(12)]
    for attempt in range(3):
        if attempt:
            Assignment.objects.all().delete()
        results = run_together([lambda user=user: do_claim_next_assignment(user)[0] for user in users])
        assert all(assignment is not None for assignment in results)
        per_item = sorted(Assignment.objects.values_list("scenario_id", flat=True))
        assert len(per_item) == 12 and all(per_item.count(s) == 2 for s in set(per_item))


@pytest.mark.django_db(transaction=True)
def test_one_annotators_double_click_holds_one_item():
    make_campaign(overlap=1, scenarios=3)
    user = make_user(ANNOTATOR)
    results = run_together([lambda: do_claim_next_assignment(user)[0]] * 2)
    assert results[0] == results[1]
    assert Assignment.objects.filter(annotator=user).count() == 1
