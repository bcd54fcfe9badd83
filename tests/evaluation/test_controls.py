"""Cold-item controls: new items first, in a random or newest-first order."""

import numpy as np
import pytest

from tfrec.evaluation import controls, protocol


def test_new_items_rank_first_in_the_given_order():
    is_new = np.array([False, True, True, False, True])
    first_seen = np.array([1.0, 50.0, 30.0, 2.0, np.nan])  # item 4: never seen anywhere
    scorers = controls.cold_item_controls(is_new, first_seen, seed=0)
    row = scorers["control_newest_first"](0, 2)[1]
    # Newest first among new items (1 then 2, never-seen 4 last of them), old items after.
    assert list(np.argsort(-row, kind="stable")[:3]) == [1, 2, 4]
    assert row[0] == row[3] < row[4]
    random_row = scorers["control_new_random"](0, 1)[0]
    assert set(np.argsort(-random_row, kind="stable")[:3]) == {1, 2, 4}


def test_a_control_finds_cold_items_only_by_being_new():
    is_new = np.array([True, True, False, False])
    score = controls.new_items_first(is_new, np.array([2.0, 1.0, 0.0, 0.0]))
    result = protocol.evaluate(score, [[0], [1], [2]], 4, ks=(1, 2))
    # Query 0 finds item 0 at rank 1; query 1 finds item 1 at rank 2; an old item ties last.
    assert result["all"]["recall@1"] == pytest.approx(1 / 3)
    assert result["all"]["recall@2"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="1-D over the catalog"):
        controls.new_items_first(is_new, np.zeros(3))
