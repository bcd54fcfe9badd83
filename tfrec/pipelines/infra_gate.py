"""`tfrec gate infra`: serve exported versions with `tfrec serve` and time their warmup requests.

The infra gate answers "does this version load in the server and answer within the latency
budget?" before `stable` moves to it. It serves only the versions under test (a staging
folder of links to them, with the export's batching parameters), waits until each is
AVAILABLE, replays each version's own warmup requests (`assets.extra/
tf_serving_warmup_requests`, written by `tfrec export`) through the load generator, and writes
a JSON verdict that `tfrec promote --require-gate` reads.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfrec import config as config_lib
from tfrec import errors
from tfrec.exporting import labels, writer
from tfrec.serving import loadtest, server_process, warmup

DEFAULT_BUDGET_MS = 250.0  # p99 of one sequential client; the tiny model answers in ~10 ms
DEFAULT_REQUESTS = 50
WARMUP_FILE = warmup.WARMUP_FILE


def read_warmup(version_dir: os.PathLike | str) -> list[tuple[str, dict]]:
    """(signature name, inputs as NumPy) of each warmup record of a version; [] without any.

    Raises:
        DataError: naming the file and record when a record is not a PredictLog.
    """
    path = Path(version_dir) / WARMUP_FILE
    if not path.is_file():
        return []
    found = []
    for index, raw in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
        if index >= warmup.MAX_WARMUP_RECORDS:
            break
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        if log.WhichOneof("log_type") != "predict_log":
            raise errors.DataError(
                f"expected a `predict_log`, received `{log.WhichOneof('log_type')}`",
                path=path,
                row=index + 1,
            )
        request = log.predict_log.request
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        found.append((request.model_spec.signature_name or "serving_default", inputs))
    return found


def judge(entry: dict, budget_ms: float) -> dict:
    """`entry` (one model's measurements) with `passed` and `reasons` set against the budget."""
    reasons = list(entry.get("reasons", []))
    if entry.get("requests", 0) == 0 and not reasons:
        reasons.append("no request was answered")
    if entry.get("errors", 0):
        reasons.append(
            f"{entry['errors']} of {entry['requests']} requests failed: "
            + "; ".join(entry.get("error_messages", [])[:3])
        )
    p99 = entry.get("p99_ms")
    if p99 is not None and p99 == p99 and p99 > budget_ms:  # p99 == p99: not NaN
        reasons.append(f"p99 latency {p99:.2f} ms is over the budget of {budget_ms:g} ms")
    return dict(entry, passed=not reasons, reasons=reasons)


def default_out(export_dir: os.PathLike | str, targets: dict) -> Path:
    """`<export_dir>/gates/infra-<version>.json` when every model has one version."""
    versions = set(targets.values())
    if len(versions) != 1:
        raise errors.ConfigError(
            f"the gated versions differ ({targets}); pass `--out FILE` for the verdict"
        )
    return Path(export_dir) / "gates" / f"infra-{versions.pop()}.json"


def run(
    export_dir: os.PathLike | str,
    models: Sequence[str] = (),
    version: Optional[int] = None,
    budget_ms: float = DEFAULT_BUDGET_MS,
    requests: int = DEFAULT_REQUESTS,
    out: Optional[os.PathLike | str] = None,
    ready_timeout_s: float = 300.0,
) -> dict:
    """Runs the infra gate on exported versions and writes its verdict.

    Args:
        export_dir: path. An export folder (`tfrec export --export-dir`).
        models: sequence of str. The models to gate; empty: every labelled model.
        version: int or None. The version to gate; None: each model's `canary`.
        budget_ms: float. Largest p99 latency (ms) of one sequential client that passes.
        requests: int. Timed requests per model, cycling through its warmup records.
        out: path or None. The verdict file; None: `default_out`.
        ready_timeout_s: float. Longest wait for the server to load the versions.

    Returns:
        dict: the verdict (also written to `out`): `gate`, `passed`, `export_dir`, `time`,
        `budget_ms`, `requests`, `out`, and `models`, one entry per model with `model`,
        `version`, `passed`, `reasons`, `requests`, `errors`, `error_messages`, `p50_ms`,
        `p99_ms`, `warmup_records` and `ready_s` (server start to all versions AVAILABLE).

    Raises:
        ConfigError: a bad budget, request count or model.
        WorkdirError: a version that is missing or incomplete.
    """
    export_dir = Path(export_dir)
    if not budget_ms > 0:
        raise errors.ConfigError(f"`--budget-ms` must be > 0, received {budget_ms!r}")
    if not 1 <= requests <= 100_000:
        raise errors.ConfigError(f"`--requests` must be in [1, 100000], received {requests!r}")
    targets = _targets(export_dir, models, version)
    out = Path(out) if out is not None else default_out(export_dir, targets)
    entries = {m: {"model": m, "version": v, "reasons": []} for m, v in targets.items()}
    log_tail = ""
    with tempfile.TemporaryDirectory(prefix="tfrec-gate-") as tmp:
        staged = _stage(export_dir, targets, Path(tmp) / "models")
        records = {m: read_warmup(export_dir / m / str(v)) for m, v in targets.items()}
        for model, found in records.items():
            entries[model]["warmup_records"] = len(found)
            if not found:
                entries[model]["reasons"].append(f"no warmup requests in `{WARMUP_FILE}`")
        servable = [m for m in targets if records[m]]
        if servable:
            log_tail = _measure(
                staged, targets, records, servable, entries, requests, ready_timeout_s, Path(tmp)
            )
    judged = [judge(entries[m], budget_ms) for m in targets]
    verdict: dict = {
        "gate": "infra",
        "passed": all(e["passed"] for e in judged),
        "export_dir": str(export_dir.resolve()),
        "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "budget_ms": float(budget_ms),
        "requests": requests,
        "out": str(out),
        "models": judged,
    }
    if log_tail and not verdict["passed"]:
        verdict["server_log_tail"] = log_tail
    config_lib.write_text_atomic(out, json.dumps(verdict, indent=2) + "\n")
    return verdict


def _targets(export_dir: Path, models: Sequence[str], version: Optional[int]) -> dict:
    """Model -> version to gate, each checked complete on disk."""
    if version is not None and (isinstance(version, bool) or version < 1):
        raise errors.ConfigError(f"`--version` must be a positive int, received {version!r}")
    state = labels.load(export_dir)
    labels.adopt(state, export_dir)
    known = sorted(state.models)
    for model in models:
        if not writer.versions(export_dir / model) and model not in known:
            raise errors.ConfigError(
                f"`--model` {model!r} has no version under {str(export_dir)!r}; expected one "
                f"of {known}"
            )
    chosen = list(dict.fromkeys(models)) or known
    if not chosen:
        raise errors.WorkdirError(f"`--export-dir` {str(export_dir)!r} holds no exported model")
    targets = {}
    for model in chosen:
        wanted = version if version is not None else state.labels(model).get(labels.CANARY)
        if wanted is None:
            raise errors.ConfigError(f"model `{model}` has no `canary` label; pass `--version N`")
        if wanted not in writer.versions(export_dir / model):
            folder = export_dir / model / str(wanted)
            why = "is incomplete (no saved_model.pb)" if folder.is_dir() else "does not exist"
            raise errors.WorkdirError(
                f"model `{model}` version {wanted} cannot be gated: `{folder}` {why}; found "
                f"versions {writer.versions(export_dir / model) or 'none'}"
            )
        targets[model] = wanted
    return targets


def _stage(export_dir: Path, targets: dict, staged: Path) -> Path:
    """A model base path serving exactly `targets`: links to their version folders.

    The published folders are only linked, never copied or written; the export's batching
    parameters come along so the versions are timed as they will be served.
    """
    for model, version in targets.items():
        (staged / model).mkdir(parents=True)
        (staged / model / str(version)).symlink_to((export_dir / model / str(version)).resolve())
    batching = export_dir / "batching_parameters.txt"
    if batching.is_file():
        shutil.copyfile(batching, staged / batching.name)
    return staged


def _measure(staged, targets, records, servable, entries, requests, ready_timeout_s, tmp) -> str:
    """Starts `tfrec serve` on `staged` and times each servable model; the log tail on failure."""
    log_path = tmp / "server.log"
    began = time.monotonic()
    batching = (staged / "batching_parameters.txt").is_file()
    try:
        with server_process.ServerProcess(
            staged, batching, servable, log_path, ready_timeout_s=ready_timeout_s
        ) as server:
            ready_s = round(time.monotonic() - began, 2)
            for model in servable:
                found, version = records[model], targets[model]

                def make_request(i: int, found=found, model=model, version=version) -> dict:
                    signature, inputs = found[i % len(found)]
                    return {"model": model, "inputs": inputs, "signature_name": signature,
                            "version": version}  # fmt: skip

                result = loadtest.run(server.grpc_target, make_request, 1, num_requests=requests)
                entries[model].update(
                    ready_s=ready_s,
                    requests=result.requests,
                    errors=result.failures,
                    error_messages=result.errors,
                    p50_ms=round(result.p50_ms, 3),
                    p99_ms=round(result.p99_ms, 3),
                )
            return ""
    except errors.TfrecError as e:  # did not start, or did not load a version in time
        for model in servable:
            entries[model]["reasons"].append(f"the server did not serve it: {e}")
        return (
            log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            if log_path.is_file()
            else ""
        )
