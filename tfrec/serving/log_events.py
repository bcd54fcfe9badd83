"""Interaction events from a `tfrec serve --log-dir` folder and the outcomes of its requests."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Optional

import pandas as pd

from tfrec import errors
from tfrec.serving import log_stats, prediction_log, pseudonym, request_log, rotating_file
from tfrec.serving import outcomes as outcomes_lib

# The columns of the events written for `tfrec.data.events_file.load_window`. Event types stay
# as reported (`click` included): the events loader maps them to the canonical ones.
COLUMNS = ("user_id", "item_id", "event_type", "timestamp")


@dataclasses.dataclass
class LogEvents:
    """What a log folder and its outcomes say users did with the items they were shown.

    Attributes:
        events: pd.DataFrame. Columns `COLUMNS`: one row per distinct reported outcome of a
            logged request, at the outcome's time (int64 unix seconds), for the item it names
            and the request's user: a known user's id when the pseudonym matched one, else
            the pseudonym (or, for `raw` logs, the id as logged).
        records: int. Prediction log records read.
        outcomes: int. Distinct outcomes read (a repeated report counts once).
        unmatched_request: int. Outcomes of requests not in the logs (not sampled, deleted).
        no_user: int. Outcomes of requests without one `user_id` for the item.
        matched_users: int. Distinct users of the events that the model knows.
        pseudonym_users: int. Distinct users of the events whose pseudonym matched no known
            user (their id is the pseudonym).
        new_raw_users: int. Distinct users of the events logged `raw` that the model does not
            know.
        schemes: list of str. The `user_scheme`s of the records.
    """

    events: pd.DataFrame
    records: int = 0
    outcomes: int = 0
    unmatched_request: int = 0
    no_user: int = 0
    matched_users: int = 0
    pseudonym_users: int = 0
    new_raw_users: int = 0
    schemes: list = dataclasses.field(default_factory=list)

    def summary(self) -> dict:
        """Everything but the events, JSON-ready."""
        fields = dataclasses.fields(self)
        return {f.name: getattr(self, f.name) for f in fields if f.name != "events"}


def _fingerprint(scheme: str) -> str:
    return scheme.split(":", 1)[1] if ":" in scheme else scheme


MATCHED, PSEUDONYM, NEW_RAW = "matched", "pseudonym", "new_raw"


def _identities(
    folder: Path,
    users_by_scheme: dict,
    key: Optional[bytes],
    known_users: Iterable[str],
) -> dict:
    """(scheme, logged id) -> (the id events get, MATCHED | PSEUDONYM | NEW_RAW)."""
    known = set(known_users)
    hashed = sorted(s for s in users_by_scheme if s != prediction_log.RAW)
    if hashed and key is None:
        raise errors.ConfigError(
            f"the logs in `{folder}` hold user ids pseudonymised under the key with "
            f"fingerprint {', '.join(_fingerprint(s) for s in hashed)} (`user_scheme` "
            f"{', '.join(hashed)}): pass `--log-key KEYFILE`, the key file `tfrec serve "
            "--log-key-file` used, so that known users' events join their rows"
        )
    identities: dict = {}
    for user in users_by_scheme.get(prediction_log.RAW, ()):
        text = user.decode("utf-8", "replace")
        identities[(prediction_log.RAW, user)] = (text, MATCHED if text in known else NEW_RAW)
    if not hashed:
        return identities
    assert key is not None
    hasher = pseudonym.Pseudonymiser(key)
    lookup = {hasher(user.encode("utf-8")): user for user in known}
    for scheme in hashed:
        logged = users_by_scheme[scheme]
        matched = {user: lookup[user] for user in logged if user in lookup}
        if not matched and scheme != hasher.scheme:
            raise errors.ConfigError(
                f"the logs in `{folder}` were pseudonymised under the key with fingerprint "
                f"{_fingerprint(scheme)}, but `--log-key` has fingerprint {hasher.fingerprint} "
                f"and matches none of their {len(logged)} users: pass the key file "
                "`tfrec serve --log-key-file` used for these logs"
            )
        for user in logged:
            if user in matched:
                identities[(scheme, user)] = (matched[user], MATCHED)
            else:
                # Unmatched: a new user whose id is the pseudonym, never anything recovered.
                identities[(scheme, user)] = (user.decode("ascii", "replace"), PSEUDONYM)
    return identities


def _user_for(entry: prediction_log.Entry, item: str) -> Optional[bytes]:
    """The logged user of the row that showed `item`, else the request's only user."""
    for user, row in zip(entry.user_ids, entry.lists, strict=False):
        if item in row:
            return user
    distinct = set(entry.user_ids)
    return distinct.pop() if len(distinct) == 1 else None


def read(
    log_dir: os.PathLike | str,
    outcomes_csv: Sequence[os.PathLike | str] = (),
    key: Optional[bytes] = None,
    known_users: Iterable[str] = (),
) -> LogEvents:
    """The events of a log folder: one per distinct reported outcome of a logged request.

    Outcomes are the folder's own `outcomes-*.jsonl` files plus `outcomes_csv`; a repeated
    report of the same (request, item, event type) counts once, at its earliest time. A
    request without an outcome gives no event.

    Args:
        log_dir: path. A `tfrec serve --log-dir` folder.
        outcomes_csv: paths. Outcome CSVs (request_id,item_id,event_type,timestamp).
        key: bytes or None. The pseudonym key `tfrec serve` used (`pseudonym.read_key`);
            required unless every record's user ids are `raw`.
        known_users: str ids. The model's user vocabulary: pseudonyms are matched against
            their keyed hashes.

    Returns:
        LogEvents.

    Raises:
        DataError: the folder is missing, or a file is corrupt (naming file and record/row).
        ConfigError: pseudonymised logs without a key, or with a key of another fingerprint
            that matches no logged user (naming both fingerprints).
    """
    folder = Path(log_dir)
    if not folder.is_dir():
        raise errors.DataError(
            "expected a log folder written by `tfrec serve --log-dir`, found none", path=folder
        )
    entries: dict = {}
    users_by_scheme: dict = {}
    records = 0
    for path in rotating_file.finished_files(folder, *request_log.PREDICTIONS):
        for entry in log_stats.read_predictions(path):
            records += 1
            entries[entry.request_id] = entry
            users_by_scheme.setdefault(entry.user_scheme, set()).update(entry.user_ids)
    reported: list = []
    for path in rotating_file.finished_files(folder, *request_log.OUTCOMES):
        reported.extend(outcomes_lib.read_jsonl(path))
    for csv_path in outcomes_csv:
        reported.extend(outcomes_lib.read_csv(csv_path))

    identities = _identities(folder, users_by_scheme, key, known_users)
    first: dict = {}
    for outcome in reported:
        event = (outcome.request_id, outcome.item_id, outcome.event_type)
        first[event] = min(first.get(event, outcome.timestamp), outcome.timestamp)
    result = LogEvents(
        events=pd.DataFrame(), records=records, outcomes=len(first), schemes=sorted(users_by_scheme)
    )
    rows = []
    kinds: dict = {MATCHED: set(), PSEUDONYM: set(), NEW_RAW: set()}
    for (request_id, item, event_type), timestamp in first.items():
        served = entries.get(request_id)
        if served is None:
            result.unmatched_request += 1
            continue
        user = _user_for(served, item)
        if user is None:
            result.no_user += 1
            continue
        user_id, kind = identities[(served.user_scheme, user)]
        kinds[kind].add(user_id)
        rows.append((user_id, item, event_type, int(timestamp)))
    result.matched_users = len(kinds[MATCHED])
    result.pseudonym_users = len(kinds[PSEUDONYM])
    result.new_raw_users = len(kinds[NEW_RAW])
    events = pd.DataFrame(rows, columns=list(COLUMNS))
    result.events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return result
