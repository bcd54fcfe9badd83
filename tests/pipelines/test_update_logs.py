"""`tfrec update --logs`: the suite's tiny model updated on what its served users did next."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.serving import log_helpers
from tfrec import artifact, cli
from tfrec.pipelines import update as update_run
from tfrec.serving import log_events, outcomes, pseudonym

KEY = bytes(range(32))
STRANGERS = ("stranger-1", "stranger-2")  # served, but never in the model's data
EVENT_TYPES = ("click", "cart", "purchase")


@pytest.fixture(scope="module")
def served(tiny_run, tmp_path_factory):
    """A log of 120 requests after the model's data, 90 with an outcome, and its key file.

    90 events: enough that the window's training examples (and their replayed old ones) fill
    one batch of the tiny config's 64.
    """
    source = artifact.Artifact(tiny_run.artifact)
    users = list(source.spec().users[:8]) + list(STRANGERS)
    items = source.catalog()["item_id"].tolist()
    end = int(source.dataset().interactions["timestamp"].max())
    requests, reported = [], []
    for n in range(120):
        row = [items[(7 * n + j) % len(items)] for j in range(5)]
        served_at = end + 3600.0 * (n + 1)
        requests.append((f"req-{n}", served_at, users[n % len(users)], row))
        if n % 4 != 3:  # every fourth request: nothing happened, so no event
            reported.append(
                outcomes.Outcome(f"req-{n}", row[n % 5], EVENT_TYPES[n % 3], served_at + 60)
            )
    root = tmp_path_factory.mktemp("served")
    log_helpers.write_served_log(root / "logs", requests, reported, key=KEY)
    (root / "log.key").write_text(KEY.hex() + "\n")
    (root / "log.key").chmod(0o600)
    (root / "other.key").write_text(bytes(range(1, 33)).hex() + "\n")
    (root / "other.key").chmod(0o600)
    return root


def _update(tiny_run, served: Path, out: Path, *extra: str) -> int:
    argv = ["update", "--artifact", str(tiny_run.artifact), "--logs", str(served / "logs")]
    return cli.main([*argv, "--workdir", str(out), *extra])


def test_pseudonymised_logs_without_a_key_are_refused(tiny_run, served, tmp_path, capsys):
    assert _update(tiny_run, served, tmp_path / "out") == 2
    error = capsys.readouterr().err
    fingerprint = pseudonym.Pseudonymiser(KEY).fingerprint
    assert f"`{served / 'logs'}`" in error and f"fingerprint {fingerprint}" in error
    assert not (tmp_path / "out").exists()


def test_a_wrong_key_is_refused_naming_both_fingerprints(tiny_run, served, tmp_path, capsys):
    code = _update(tiny_run, served, tmp_path / "out", "--log-key", str(served / "other.key"))
    assert code == 2
    error = capsys.readouterr().err
    assert pseudonym.Pseudonymiser(KEY).fingerprint in error
    assert pseudonym.Pseudonymiser(bytes(range(1, 33))).fingerprint in error
    assert not (tmp_path / "out").exists()


def test_an_update_needs_events_or_logs(tiny_run, tmp_path, capsys):
    argv = ["update", "--artifact", str(tiny_run.artifact), "--workdir", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    assert "expected `--events`, `--logs` or both" in capsys.readouterr().err


def test_an_update_from_logs_alone_matches_known_users_and_keeps_pseudonyms(
    tiny_run, served, tmp_path, capsys
):
    source = tiny_run.copy_artifact(tmp_path / "artifact")
    out = tmp_path / "updated"
    argv = ["update", "--artifact", str(source), "--logs", str(served / "logs")]
    extra = ["--log-key", str(served / "log.key"), "--set", "update.epochs=1"]
    assert cli.main([*argv, "--workdir", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    assert f"from logs {served / 'logs'}: 90 events from 90 outcomes of 120 logged requests" in (
        printed
    )
    assert "users: 8 matched known users, 2 stayed pseudonyms" in printed
    record = json.loads((out / "update.json").read_text())
    logs = record["window"]["logs"]
    assert (logs["events"], logs["matched_users"], logs["pseudonym_users"]) == (90, 8, 2)
    old, new = artifact.Artifact(source).spec().users, artifact.Artifact(out / "artifact").spec()
    hashed = pseudonym.Pseudonymiser(KEY)
    added = set(new.users[len(old) :])
    assert added == {hashed(s.encode()).decode() for s in STRANGERS}
    assert not added & set(STRANGERS)


def test_events_and_logs_merge_with_an_event_in_both_counted_once(tmp_path):
    found = log_events.LogEvents(
        events=pd.DataFrame(
            {
                "user_id": ["u1", "u2"],
                "item_id": ["i1", "i2"],
                "event_type": ["click", "purchase"],
                "timestamp": [1_700_000_100, 1_700_000_200],
            }
        )
    )
    events = tmp_path / "events.csv"
    # u1's click on i1 is also in the file (as `view`, the canonical name of a click).
    events.write_text(
        "user_id,item_id,timestamp,event_type,price\n"
        "u1,i1,1700000100,view,9.5\nu3,i3,1700000000,cart,2.0\n"
    )
    window, path = update_run._load_window(events, None, found, tmp_path / "run", None)
    assert path == events
    assert window.interactions[["user_id", "item_id", "event_type"]].values.tolist() == [
        ["u3", "i3", "cart"],
        ["u1", "i1", "view"],
        ["u2", "i2", "purchase"],
    ]
    assert window.interactions["price"].iloc[1] == 9.5  # the file's row is the one kept
    assert (tmp_path / "run" / update_run.LOG_EVENTS).is_file()
