"""Simulated annotators: the hidden utility, Bradley-Terry noise, position bias, ties, "na", agreement."""

import math

import numpy as np
import pytest

from alignment.simulate import OVERALL, SimulatedAnnotators, SimulatorConfig, Utility

LISTENING = Utility({"turn/listening": 1.0})
LATENCY = Utility({"turn/latency_s": -1.0})


def random_pairs(n: int, seed: int = 0) -> list[tuple[dict, dict]]:
    rng = np.random.default_rng(seed)
    return [({"turn/listening": rng.random(), "turn/latency_s": rng.random()},
             {"turn/listening": rng.random(), "turn/latency_s": rng.random()}) for _ in range(n)]


def test_without_noise_the_higher_utility_always_wins_and_signs_are_respected():
    simulator = SimulatedAnnotators(SimulatorConfig({"listening": LISTENING, "speaking": LATENCY},
                                                    temperature=1e-6))
    rng = np.random.default_rng(0)
    for left, right in random_pairs(50):
        judgement = simulator.judge(left, right, rng)
        assert judgement.labels["listening"] == ("a" if left["turn/listening"] > right["turn/listening"] else "b")
        assert judgement.labels["speaking"] == ("a" if left["turn/latency_s"] < right["turn/latency_s"] else "b")
        overall_gap = (left["turn/listening"] - left["turn/latency_s"]) - (right["turn/listening"] - right["turn/latency_s"])
        assert judgement.overall == ("a" if overall_gap > 0 else "b")
        assert judgement.strength == 3 and judgement.confidence == 5
    assert simulator.self_agreement(random_pairs(50)) == pytest.approx({OVERALL: 1.0, "listening": 1.0,
                                                                        "speaking": 1.0})


def test_noise_follows_bradley_terry_and_agreement_is_computed_exactly():
    simulator = SimulatedAnnotators(SimulatorConfig({"listening": LISTENING}, temperature=0.1))
    left, right = {"turn/listening": 0.6}, {"turn/listening": 0.5}  # gap of one temperature
    rng = np.random.default_rng(1)
    votes = [simulator.judge(left, right, rng).labels["listening"] for _ in range(4000)]
    p = 1 / (1 + math.exp(-1))
    assert votes.count("a") / len(votes) == pytest.approx(p, abs=0.025)
    # Self-agreement: two independent draws agree with p^2 + (1 - p)^2; the truth wins with p.
    pairs = random_pairs(200, seed=2)
    expected = simulator.self_agreement(pairs)["listening"]
    first = [simulator.judge(a, b, rng).labels["listening"] for a, b in pairs for _ in range(20)]
    second = [simulator.judge(a, b, rng).labels["listening"] for a, b in pairs for _ in range(20)]
    assert np.mean([x == y for x, y in zip(first, second)]) == pytest.approx(expected, abs=0.02)
    truth = simulator.truth_agreement(pairs)["listening"]
    wins = [("a" if a["turn/listening"] > b["turn/listening"] else "b") == vote
            for (a, b), vote in zip([pair for pair in pairs for _ in range(20)], first)]
    assert np.mean(wins) == pytest.approx(truth, abs=0.02)
    assert 0.5 < expected < truth < 1
    # More noise, less agreement.
    noisier = SimulatedAnnotators(SimulatorConfig({"listening": LISTENING}, temperature=0.5))
    assert noisier.self_agreement(pairs)["listening"] < expected


def test_a_share_of_annotators_leans_to_the_left_clip():
    fair = SimulatedAnnotators(SimulatorConfig({"listening": LISTENING}, temperature=0.1, annotators=10))
    leaning = SimulatedAnnotators(SimulatorConfig({"listening": LISTENING}, temperature=0.1, annotators=10,
                                                  biased_share=0.4, position_bias=3.0))
    assert leaning.config.biases.tolist() == [3.0] * 4 + [0.0] * 6
    pairs = random_pairs(300, seed=3)
    both_ways = pairs + [(b, a) for a, b in pairs]  # every pair shown in both orders
    rng = np.random.default_rng(4)

    def left_share(simulator, **kw):
        return np.mean([simulator.judge(a, b, rng, **kw).overall == "a" for a, b in both_ways])

    assert left_share(fair) == pytest.approx(0.5, abs=0.03)
    assert left_share(leaning, annotator=0) > 0.68  # a biased one (~0.75 on these gaps)
    assert left_share(leaning, annotator=9) == pytest.approx(0.5, abs=0.03)  # a fair one
    assert 0.55 < left_share(leaning) < 0.65  # 0.4 * 0.75 + 0.6 * 0.5
    assert leaning.truth_agreement(pairs)[OVERALL] < fair.truth_agreement(pairs)[OVERALL]
    with pytest.raises(ValueError, match="outside the pool"):
        fair.judge(*pairs[0], rng, annotator=10)


def test_equal_behaviour_ties_and_metrics_that_do_not_apply_give_na():
    simulator = SimulatedAnnotators(SimulatorConfig({"listening": LISTENING, "speaking": LATENCY},
                                                    temperature=0.1, tie_margin=0.01))
    rng = np.random.default_rng(5)
    same = {"turn/listening": 0.7, "turn/latency_s": math.nan}
    judgement = simulator.judge(same, {"turn/listening": 0.705, "turn/latency_s": 0.4}, rng)
    assert judgement.labels == {"listening": "tie", "speaking": "na"}
    assert judgement.overall == "tie" and judgement.strength == 1  # the site records a tie as strength 1
    agreement = simulator.self_agreement([(same, same)])
    assert agreement[OVERALL] == agreement["listening"] == 1.0 and math.isnan(agreement["speaking"])
    manifest = judgement.as_manifest(("speaking", "listening", "manipulation"))
    assert manifest["labels"] == {"speaking": "na", "listening": "tie", "manipulation": "na"}
    assert set(manifest) == {"annotator", "overall", "labels", "strength", "confidence"}


def test_overall_defaults_to_the_sum_of_the_dimensions():
    config = SimulatorConfig({"listening": LISTENING, "speaking": Utility({"turn/listening": 0.5,
                                                                          "turn/latency_s": -1.0})})
    assert config.overall.weights == {"turn/listening": 1.5, "turn/latency_s": -1.0}


@pytest.mark.parametrize("kwargs, message", [
    ({"dimensions": {}}, "at least one dimension"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"biased_share": 1.5}, "biased_share"),
    ({"annotators": 0}, "annotators must be >= 1"),
    ({"tie_margin": -1.0}, "tie_margin"),
    ({"annotator_ids": (1, 2)}, "annotator_ids"),
    ({"dimensions": {"overall": LISTENING}}, "overall verdict"),
])
def test_bad_configurations_are_refused_with_a_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimulatorConfig(**{"dimensions": {"listening": LISTENING}, **kwargs})


def test_unknown_metrics_and_zero_weights_are_refused():
    with pytest.raises(ValueError, match="unknown behaviour metric 'turn/listenin'"):
        Utility({"turn/listenin": 1.0})
    with pytest.raises(ValueError, match="non-zero"):
        Utility({"turn/listening": 0.0})
    assert Utility({"intelligibility/wer_domain": -1.0, "motion/frechet": -0.1})({"motion/frechet": 2.0}) == -0.2
