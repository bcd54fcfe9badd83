"""`tfrec gate data`: is a new window of events fit to update or retrain a model on?

Reads the window as `tfrec update` does (`tfrec.data.events_file`), compares it with the
model's training window (`tfrec.data.drift`) under the thresholds of `gates.data`, and writes
a JSON verdict. A window that cannot be read (a missing or unknown column, a bad value) fails
the gate with the reader's message, which names the file, row and field.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import drift, events_file, loaders, schema


def run(
    artifact: os.PathLike | str,
    events: os.PathLike | str,
    items: Optional[os.PathLike | str] = None,
    out: Optional[os.PathLike | str] = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Checks the window `events` (and `items`) against the training window of `artifact`.

    Args:
        artifact: path. The model artifact (or a run folder holding one).
        events: path. The window's events, canonical columns (as `tfrec update` reads them).
        items: path or None. New or changed items of the window.
        out: path or None. Verdict file; None: `<events>.data-gate.json` beside the events.
        overrides: `gates.data.*=value` thresholds for this check.

    Returns:
        The verdict: `passed`, every check with its value and threshold, `reasons` (the
        failed checks, or the reader's error), the files and thresholds used.
    """
    source = artifact_lib.Artifact(artifact)
    config = config_lib.with_overrides(source.config, overrides, ["gates"])
    gate = config.gates.data
    verdict: dict[str, Any] = {
        "gate": "data",
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "artifact": str(source.root),
        "events": str(events),
        "items": None if items is None else str(items),
        "thresholds": config_lib.to_dict(config)["gates"]["data"],
    }
    try:
        window = events_file.load_window(events, items, loaders.rules(config.data))
    except errors.DataError as error:
        verdict.update(passed=False, checks=[], reasons=[f"unreadable window: {error}"])
    else:
        dataset = source.dataset()
        start = source.manifest["split"]["validation_start"]
        inter = dataset.interactions
        train = inter[inter["timestamp"] < start]
        known = source.catalog()["item_id"].astype(str).to_numpy(dtype=object)
        checks = drift.compare(train, window, known, gate)
        verdict.update(
            passed=all(c.passed for c in checks),
            checks=[c.to_dict() for c in checks],
            reasons=[f"{c.name} {c.value} is not {c.threshold}" for c in checks if not c.passed],
            window={
                "events": int(len(window.interactions)),
                "from_utc": schema.iso_utc(int(window.interactions["timestamp"].min())),
                "to_utc": schema.iso_utc(int(window.interactions["timestamp"].max())),
            }
            if len(window.interactions)
            else {"events": 0},
        )
    path = Path(out) if out is not None else Path(f"{events}.data-gate.json")
    config_lib.write_text_atomic(path, json.dumps(verdict, indent=2) + "\n")
    verdict["path"] = str(path)
    return verdict
