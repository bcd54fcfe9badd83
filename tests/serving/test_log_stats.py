"""`tfrec logs stats`: a hand-checkable log folder, outcome files, and refusal of bad files."""

from __future__ import annotations

import json
import shutil

import pytest
from tensorflow_serving.apis import predict_pb2

from tfrec import cli, errors
from tfrec.serving import log_stats, outcomes, prediction_log, rotating_file
from tfrec.serving.request_log import OUTCOMES, PREDICTIONS

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z

# request id, version, user, returned row ("" is padding)
LOGGED = [
    ("r1", 1, "u1", ["i1", "i2", "i3"]),
    ("r2", 1, "u2", ["i2", "i1", "i4"]),
    ("r3", 2, "u1", ["i1", "i5", ""]),
]


def _write_logs(folder) -> list:
    stream = rotating_file.RotatingFile(folder, *PREDICTIONS, "tfrecord", max_file_bytes=1 << 20)
    paths = []
    for i, (request_id, version, user, row) in enumerate(LOGGED):
        request = prediction_log.request_from_arrays("recs", "serving_default", {"user_id": [user]})
        response = prediction_log.response_from_arrays(
            "recs", version, "serving_default", {"item_ids": [row], "scores": [[3.0, 2.0, 1.0]]}
        )
        record = prediction_log.build(
            request, response, request_id=request_id, served_at=T0 + 10 * i, sample_rate=0.5
        )
        stream.write(record.SerializeToString())
        if i == 1:
            paths.append(stream.close())  # two files: records 1-2 and 3
    paths.append(stream.close())
    lines = rotating_file.RotatingFile(folder, *OUTCOMES, "lines", max_file_bytes=1 << 20)
    lines.write(outcomes.Outcome("r3", "i5", "click", T0 + 30).to_json_line(T0 + 31))
    lines.close()
    return paths


CSV = """request_id,item_id,event_type,timestamp
r1,i2,click,2024-05-01T12:00:05Z
r1,i2,click,2024-05-01T12:00:05Z
r2,i2,click,1714564815
r2,i4,purchase,2024-05-01T12:01:00
r9,i1,click,2024-05-01T12:02:00Z
r3,i9,cart,2024-05-01T12:03:00Z
"""


@pytest.fixture
def log_folder(tmp_path):
    folder = tmp_path / "logs"
    _write_logs(folder)
    (tmp_path / "outcomes.csv").write_text(CSV)
    catalog = "item_id,title\n" + "".join(f"i{n},item {n}\n" for n in range(1, 11))
    (tmp_path / "items.csv").write_text(catalog)
    return folder


def test_stats_of_a_log_folder_with_outcomes(log_folder, tmp_path):
    report = log_stats.compute(
        log_folder, outcomes_csv=[tmp_path / "outcomes.csv"], catalog=tmp_path / "items.csv", top=2
    )
    assert report["files"] == {
        "predictions": 2, "outcomes": 1, "in_progress": 0, "bytes": report["files"]["bytes"]
    }  # fmt: skip
    assert report["records"] == 3
    assert report["time_span"] == {
        "first": "2024-05-01T12:00:00Z", "last": "2024-05-01T12:00:20Z", "seconds": 20.0
    }  # fmt: skip
    assert report["by_model_version_signature"] == [
        {"model": "recs", "version": 1, "signature": "serving_default", "records": 2},
        {"model": "recs", "version": 2, "signature": "serving_default", "records": 1},
    ]
    assert report["sampling_rates"] == [{"rate": 0.5, "records": 3}]
    assert report["users"] == {"distinct": 2, "schemes": [{"scheme": "raw", "records": 3}]}
    items = report["items"]
    # i1 x3, i2 x2, i3 i4 i5 x1: 8 impressions, 5 distinct of a 10-item catalog.
    assert (items["impressions"], items["distinct_shown"], items["coverage"]) == (8, 5, 0.5)
    assert items["most_shown"] == [
        {"item_id": "i1", "impressions": 3, "share": 0.375},
        {"item_id": "i2", "impressions": 2, "share": 0.25},
    ]
    out = report["outcomes"]
    # 7 reported (6 CSV + 1 in the folder), one repeated; r9 was never logged; i9 was not shown.
    assert (out["reported"], out["distinct"], out["unmatched_request"], out["item_not_shown"]) == (
        7, 6, 1, 1
    )  # fmt: skip
    assert out["by_event_type"] == [
        {"event_type": "cart", "requests": 1, "rate": round(1 / 3, 6)},  # r3
        {"event_type": "click", "requests": 3, "rate": 1.0},  # r1, r2, r3
        {"event_type": "purchase", "requests": 1, "rate": round(1 / 3, 6)},  # r2
    ]
    # Rows showing an item at positions 1, 2, 3: 3, 3, 2 (r3's third slot is padding).
    # Clicks: r2 at 1; r1 and r3 at 2. Purchase: r2 at 3.
    by_position = {row["position"]: row for row in out["by_position"]}
    assert [by_position[p]["rows"] for p in (1, 2, 3)] == [3, 3, 2]
    assert [by_position[p]["click"]["outcomes"] for p in (1, 2, 3)] == [1, 2, 0]
    assert by_position[2]["click"]["rate"] == round(2 / 3, 6)
    assert by_position[3]["purchase"] == {"outcomes": 1, "rate": 0.5}
    text = log_stats.format_report(report)
    assert "records: 3" in text and "50.00% of 10 catalog items" in text


def test_cli_prints_json_and_a_table(log_folder, capsys):
    assert cli.main(["logs", "stats", str(log_folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["records"] == 3 and report["outcomes"]["reported"] == 1
    assert cli.main(["logs", "stats", str(log_folder)]) == 0
    assert "by model, version, signature:" in capsys.readouterr().out


def test_a_truncated_or_corrupt_file_is_refused_naming_file_and_record(log_folder, capsys):
    first, _ = rotating_file.finished_files(log_folder, *PREDICTIONS)
    data = first.read_bytes()
    first.write_bytes(data[:-5])  # the second record loses its tail
    with pytest.raises(errors.DataError) as caught:
        log_stats.compute(log_folder)
    message = str(caught.value)
    assert (
        f"file `{first}`" in message and "record 2 is truncated (reading stopped at byte" in message
    )
    assert "expected a complete TFRecord record" in message
    assert cli.main(["logs", "stats", str(log_folder)]) == 2
    assert first.name in capsys.readouterr().err
    damaged = bytearray(data)
    damaged[20] ^= 0xFF  # inside the first record's data: its CRC no longer matches
    first.write_bytes(bytes(damaged))
    with pytest.raises(
        errors.DataError, match=r"record 1 is corrupted \(reading stopped at byte 12\)"
    ):
        log_stats.compute(log_folder)


def test_a_record_that_is_not_a_tfrec_prediction_log_is_refused(tmp_path):
    stream = rotating_file.RotatingFile(tmp_path, *PREDICTIONS, "tfrecord", 1 << 20)
    stream.write(predict_pb2.PredictRequest().SerializeToString())  # parses, wrong content
    path = stream.close()
    with pytest.raises(errors.DataError, match=r"record 1: expected a PredictionLog .*`log_type`"):
        log_stats.compute(tmp_path)
    assert str(path) in str(pytest.raises(errors.DataError, log_stats.compute, tmp_path).value)


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(errors.DataError, match=r"expected a log folder"):
        log_stats.compute(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("user,item,event\nu,i,click\n", r"row 1: unknown outcomes schema: expected the columns request_id,item_id,event_type,timestamp, received user,item,event"),
        ("", r"row 1: unknown outcomes schema: .* received an empty file"),
        ("request_id,item_id,event_type,timestamp\nr1,i1,click,0\nr1,i1,like,0\n", r"row 3, field `event_type`: expected one of \['click', 'cart', 'purchase'\], received 'like'"),
        ("request_id,item_id,event_type,timestamp\nr1,i1,click,soon\n", r"row 2, field `timestamp`: expected an ISO 8601 time"),
        ("request_id,item_id,event_type,timestamp\nr1,i1,click\n", r"row 2: expected 4 values \(request_id,item_id,event_type,timestamp\), received 3"),
        ("request_id,item_id,event_type,timestamp\n,i1,click,0\n", r"row 2, field `request_id`: missing"),
    ],
)  # fmt: skip
def test_outcome_csv_is_validated_naming_file_row_and_field(tmp_path, text, pattern):
    path = tmp_path / "outcomes.csv"
    path.write_text(text)
    with pytest.raises(errors.DataError, match=pattern) as caught:
        outcomes.read_csv(path)
    assert str(caught.value).startswith(f"file `{path}`")


def test_a_truncated_outcome_line_is_refused(log_folder):
    (path,) = rotating_file.finished_files(log_folder, *OUTCOMES)
    copy = log_folder / "outcomes-20300101T000000000000Z-1-0009.jsonl"
    shutil.copy(path, copy)
    copy.write_bytes(copy.read_bytes()[:-10])
    with pytest.raises(errors.DataError, match=r"row 1: expected a complete line"):
        log_stats.compute(log_folder)
