"""`python -m alignment.bench reward`'s parts on the debug agent: the TRL baseline and our run measure the same pairs."""

import pytest

from alignment.bench.__main__ import main
from alignment.bench.reward import table, train_ours, train_trl


@pytest.mark.slow
def test_trl_baseline_and_ours_train_the_same_pairs_and_report_a_rate(small_snapshot, debug_agent_dir, tmp_path):
    theirs = train_trl(small_snapshot.path, debug_agent_dir, epochs=1, batch=4, validation_fraction=0.3)
    ours = train_ours(small_snapshot.path, debug_agent_dir, tmp_path / "ours", ranks=1, zero=0, epochs=1, batch=4,
                      validation_fraction=0.3)
    train, _ = small_snapshot.split(0.3, 0)
    assert theirs["pairs"] == ours["pairs"] == len(train)
    for result in (theirs, ours):
        assert result["seconds"] > 0 and result["pairs_per_second"] == pytest.approx(len(train) / result["seconds"])
    report = {"agent": "debug", "frames": 6, "epochs": 1, "batch_size": 4,
              "results": [{"trainer": "trl", "ranks": 1, "zero_stage": None, **theirs, "ratio_to_trl": 1.0},
                          {"trainer": "ours", "ranks": 1, "zero_stage": 0, **ours,
                           "ratio_to_trl": ours["pairs_per_second"] / theirs["pairs_per_second"]}]}
    assert len(table(report).splitlines()) == 4


def test_bad_arguments_exit_2_before_any_sampling(capsys):
    assert main(["reward", "--per-round", "1"]) == 2
    assert "--per-round is too small" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["nothing"])
