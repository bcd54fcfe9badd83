"""A small served log folder, pseudonymised or raw, written as `tfrec serve --log-dir` does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from tfrec.serving import outcomes, prediction_log, pseudonym, rotating_file
from tfrec.serving.request_log import OUTCOMES, PREDICTIONS


def write_served_log(
    folder: Path,
    requests: Sequence[tuple[str, float, str, list]],
    reported: Sequence[outcomes.Outcome] = (),
    key: Optional[bytes] = None,
) -> Path:
    """Writes one predictions file and, with `reported`, one outcomes file.

    Args:
        folder: Path. The log folder (created).
        requests: (request id, served at, user id, returned item ids) per logged request.
        reported: Outcome. Written as the server appends `POST /v1/outcomes`.
        key: bytes or None. Pseudonymise user ids under this key; None: log them raw.

    Returns:
        Path. The predictions file.
    """
    hasher = None if key is None else pseudonym.Pseudonymiser(key)
    stream = rotating_file.RotatingFile(folder, *PREDICTIONS, "tfrecord", max_file_bytes=1 << 20)
    for request_id, served_at, user, row in requests:
        request = prediction_log.request_from_arrays("recs", "recommend", {"user_id": [user]})
        response = prediction_log.response_from_arrays(
            "recs", 1, "recommend", {"item_ids": [row], "scores": [[1.0] * len(row)]}
        )
        record = prediction_log.build(
            request,
            response,
            request_id=request_id,
            served_at=served_at,
            sample_rate=1.0,
            pseudonymise=hasher,
            scheme=prediction_log.RAW if hasher is None else hasher.scheme,
        )
        stream.write(record.SerializeToString())
    path = stream.close()
    assert path is not None
    if reported:
        lines = rotating_file.RotatingFile(folder, *OUTCOMES, "lines", max_file_bytes=1 << 20)
        for outcome in reported:
            lines.write(outcome.to_json_line(outcome.timestamp + 1))
        lines.close()
    return path
