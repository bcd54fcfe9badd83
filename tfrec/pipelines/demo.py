"""`make demo`: train, evaluate against baselines, compress, export, serve, then recommend
over gRPC and REST before and after a new event, and stop the server."""

from __future__ import annotations

import argparse
import shutil
import time
import types
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from tfrec import config as config_lib
from tfrec import console

if TYPE_CHECKING:
    from tfrec.data import prepared as prepared_lib

_CONFIGS = {"synthetic": "demo.yaml", "online-retail": "online_retail.yaml"}
# The repository's configs/ folder (this file is tfrec/pipelines/demo.py).
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# The full two-stage pipeline (retrieve, rank, blend, business rules): on both shipped datasets
# it measures above the retrieval stage alone (README, "Results").
SIGNATURE = "recommend"


def _request(user: str, events: list, k: int) -> dict:
    """One request of `retrieve` or `recommend`, at the current UTC hour and weekday."""
    from tfrec.ranking import requests  # imports TensorFlow: only once the demo runs

    return requests.build(user, events, k=k)


def _print_list(title: str, out: dict, ms: float) -> None:
    print(f"{title} ({ms:.1f} ms)")
    for rank, (item, name, score) in enumerate(
        zip(out["item_ids"][0], out["titles"][0], out["scores"][0], strict=True), 1
    ):
        print(f"  {rank:>2}. {score:7.3f}  {item.decode():<10} {name.decode()[:60]}")


def serve_and_query(
    export_dir: Path, prepared: prepared_lib.PreparedData, model_name: str = "tfrec"
) -> None:
    """Starts the development server on the export, sends requests over gRPC and REST."""
    from tfrec.serving import Client, server

    test = prepared.test
    user = str(test.user_id[0])
    events = [
        (i, e)
        for i, e in zip(test.history_item_ids[0], test.history_event_types[0], strict=True)
        if i
    ][:5]
    with server.start(export_dir, grpc_port=0, rest_port=0) as running:
        print(
            f"\nServing {model_name} on gRPC {running.grpc_target} and REST {running.rest_target}"
        )
        before: Optional[dict] = None
        for protocol, target in (("grpc", running.grpc_target), ("rest", running.rest_target)):
            client = Client(target, protocol=protocol)
            client.predict(model_name, _request(user, events, 5), signature_name=SIGNATURE)
            start = time.perf_counter()
            out = client.predict(model_name, _request(user, events, 5), signature_name=SIGNATURE)
            ms = (time.perf_counter() - start) * 1000
            recent = ", ".join(f"{e}:{i}" for i, e in events[:3]) or "none"
            _print_list(
                f"\n[{protocol}] `{SIGNATURE}` for user {user}, recent events {recent}", out, ms
            )
            before = out if before is None else before
        # The new event: a cart add of the item this user really interacted with next.
        new_item = str(test.relevant[0][0])
        new_events = [(new_item, "cart"), *events]
        for protocol, target in (("grpc", running.grpc_target), ("rest", running.rest_target)):
            client = Client(target, protocol=protocol)
            start = time.perf_counter()
            out = client.predict(
                model_name, _request(user, new_events, 5), signature_name=SIGNATURE
            )
            ms = (time.perf_counter() - start) * 1000
            _print_list(
                f"\n[{protocol}] same user right after a cart event for {new_item}", out, ms
            )
        assert before is not None  # set by the first loop, which always runs
        changed = list(out["item_ids"][0]) != list(before["item_ids"][0])
        print(f"\nRecommendations changed with the new event, no retraining: {changed}")
    print("Server stopped.")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="synthetic", choices=sorted(_CONFIGS))
    parser.add_argument("--workdir", default="runs/demo")
    parser.add_argument("--export-dir", default="export")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--verbose", action="store_true", help="keep TensorFlow's log lines")
    args = parser.parse_args(argv)
    console.quiet(args.verbose)
    cfg = config_lib.load(str(CONFIGS / _CONFIGS[args.dataset]), args.set)

    from tfrec.data import prepared as prepared_lib
    from tfrec.pipelines import evaluate as evaluation_run
    from tfrec.pipelines import export as export_run
    from tfrec.pipelines import train as training_run

    start = time.perf_counter()
    prepared = prepared_lib.prepare(cfg)
    training_run.train_all(cfg, args.workdir, prepared=prepared)
    trained = time.perf_counter()
    evaluation_run.evaluate_workdir(args.workdir, prepared)
    steps = {"train": trained - start, "evaluate": time.perf_counter() - trained}
    mark = time.perf_counter()
    compression_run: Optional[types.ModuleType]
    try:
        from tfrec.pipelines import compress as compression_run
    except ImportError:  # compression is optional for the demo
        compression_run = None
    if compression_run is not None:
        # How much it fine-tunes and times is the config's `compression` section.
        compression_run.compress_workdir(args.workdir, prepared=prepared)
        steps["compress"] = time.perf_counter() - mark
    mark = time.perf_counter()
    export_dir = Path(args.export_dir) / cfg.name
    shutil.rmtree(export_dir, ignore_errors=True)  # the demo's own export, rebuilt each run
    export_run.export(args.workdir, export_dir)
    steps["export"] = time.perf_counter() - mark
    mark = time.perf_counter()
    serve_and_query(export_dir, prepared)
    steps["serve"] = time.perf_counter() - mark
    total = time.perf_counter() - start
    print(
        "\nDemo done in "
        + ", ".join(f"{k} {v:.0f}s" for k, v in steps.items())
        + f" (total {total:.0f}s). TensorBoard: tensorboard --logdir {args.workdir}"
    )
    return 0


if __name__ == "__main__":
    # Ends without interpreter teardown, so the exit code is the run's own (see console).
    console.exit_process(main())
