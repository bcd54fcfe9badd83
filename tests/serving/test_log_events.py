"""Events from a served log and its outcomes: known users matched by key, pseudonyms kept."""

from __future__ import annotations

import pytest

from tests.serving import log_helpers
from tests.serving.test_log_stats import log_folder  # noqa: F401 (a raw log folder fixture)
from tfrec import errors
from tfrec.serving import log_events, pseudonym, rotating_file
from tfrec.serving.outcomes import Outcome
from tfrec.serving.request_log import PREDICTIONS

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z
KEY = bytes(range(32))
KNOWN = ["u1", "u2", "u3"]
STRANGER = "s1"  # served, but not in the model's user vocabulary

REQUESTS = [
    ("r1", T0, "u1", ["i1", "i2", "i3"]),
    ("r2", T0 + 10, STRANGER, ["i2", "i4"]),
    ("r3", T0 + 20, "u2", ["i5", "i1"]),  # no outcome: no event
]
REPORTED = [
    Outcome("r1", "i2", "click", T0 + 5),
    Outcome("r1", "i2", "click", T0 + 7),  # reported again later: one event, the first time
    Outcome("r2", "i4", "purchase", T0 + 30.9),
    Outcome("r9", "i1", "cart", T0 + 40),  # a request not in the logs
]


@pytest.fixture
def hashed_logs(tmp_path):
    folder = tmp_path / "logs"
    log_helpers.write_served_log(folder, REQUESTS, REPORTED, key=KEY)
    return folder


def test_outcomes_become_events_of_known_users_or_of_their_pseudonym(hashed_logs, tmp_path):
    csv = tmp_path / "outcomes.csv"
    csv.write_text("request_id,item_id,event_type,timestamp\nr1,i3,cart,2024-05-01T12:01:00Z\n")
    found = log_events.read(hashed_logs, [csv], KEY, KNOWN)
    stranger = pseudonym.Pseudonymiser(KEY)(STRANGER.encode()).decode()
    assert found.events.to_dict("records") == [
        {"user_id": "u1", "item_id": "i2", "event_type": "click", "timestamp": int(T0) + 5},
        {"user_id": stranger, "item_id": "i4", "event_type": "purchase", "timestamp": int(T0) + 30},
        {"user_id": "u1", "item_id": "i3", "event_type": "cart", "timestamp": int(T0) + 60},
    ]
    assert STRANGER not in set(found.events["user_id"])
    assert found.summary() == {
        "records": 3,
        "outcomes": 4,  # r1/i2/click once, r2, r9, and the CSV's
        "unmatched_request": 1,
        "no_user": 0,
        "matched_users": 1,  # u1; u2 was served but did nothing
        "pseudonym_users": 1,
        "new_raw_users": 0,
        "schemes": [pseudonym.Pseudonymiser(KEY).scheme],
    }


def test_pseudonymised_logs_are_refused_without_their_key(hashed_logs):
    fingerprint = pseudonym.Pseudonymiser(KEY).fingerprint
    with pytest.raises(errors.ConfigError) as caught:
        log_events.read(hashed_logs, known_users=KNOWN)
    message = str(caught.value)
    assert f"`{hashed_logs}`" in message and f"fingerprint {fingerprint}" in message
    assert "`--log-key KEYFILE`" in message


def test_a_wrong_key_is_refused_naming_both_fingerprints(hashed_logs):
    other = bytes(range(1, 33))
    with pytest.raises(errors.ConfigError) as caught:
        log_events.read(hashed_logs, key=other, known_users=KNOWN)
    message = str(caught.value)
    assert pseudonym.Pseudonymiser(KEY).fingerprint in message
    assert pseudonym.Pseudonymiser(other).fingerprint in message
    assert "matches none of their 3 users" in message


def test_raw_logs_need_no_key_and_a_corrupt_file_is_refused(log_folder):  # noqa: F811
    found = log_events.read(log_folder, known_users=["u1"])
    # The folder of `tfrec logs stats`' test: raw ids, one outcome (r3, i5, click by u1).
    assert found.events[["user_id", "item_id", "event_type"]].values.tolist() == [
        ["u1", "i5", "click"]
    ]
    assert (found.matched_users, found.new_raw_users, found.pseudonym_users) == (1, 0, 0)
    first, _ = rotating_file.finished_files(log_folder, *PREDICTIONS)
    first.write_bytes(first.read_bytes()[:-5])
    with pytest.raises(errors.DataError, match=rf"file `{first}`: record 2 is truncated"):
        log_events.read(log_folder)


def test_the_key_is_read_not_created(tmp_path):
    missing = tmp_path / "log.key"
    with pytest.raises(errors.ConfigError, match="`--log-key` .*found no such file"):
        pseudonym.read_key(missing, "--log-key")
    assert not missing.exists()
    missing.write_text("not hex\n")
    with pytest.raises(errors.ConfigError, match="expected at least 32 hex characters"):
        pseudonym.read_key(missing, "--log-key")
