"""`make demo`: train, evaluate against baselines, then show real-time recommendations."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tfrec import config as config_lib

_CONFIGS = {"synthetic": "demo.yaml", "online-retail": "online_retail.yaml"}


def _show(title: str, ids, scores, titles: dict) -> None:
    print(title)
    for rank, (item, score) in enumerate(zip(ids, scores), 1):
        print(f"  {rank:>2}. {score:7.3f}  {item:<12} {titles.get(item, '')[:60]}")


def realtime_example(config, workdir, prepared) -> None:
    """Recommends for a test user, then again after one new event: the list changes at once."""
    import tensorflow as tf

    from tfrec import features, inference
    from tfrec.training import trainer

    model = trainer.load_trained(config, workdir, prepared)
    items = inference.item_embeddings(model.candidate_model, prepared.table)
    item_ids = prepared.table.item_ids
    titles = dict(zip(prepared.dataset.items["item_id"], prepared.dataset.items["title"]))
    q = prepared.test
    user, history = q.user_id[0], list(q.history_item_ids[0])
    events = list(q.history_event_types[0])
    spec = prepared.spec

    def recommend(hist, evs):
        request = {
            features.USER_ID: tf.constant([user]),
            features.HISTORY_ITEM_IDS: tf.constant([hist]),
            features.HISTORY_EVENT_TYPES: tf.constant([evs]),
            features.HOUR_OF_DAY: tf.constant([int(q.hour_of_day[0])]),
            features.DAY_OF_WEEK: tf.constant([int(q.day_of_week[0])]),
            features.QUERY_TOKEN_IDS: tf.zeros([1, spec.query_text_length], tf.int32),
        }
        start = time.perf_counter()
        emb = np.asarray(model.query_model(request, training=False))[0]
        scores = items @ emb
        top = np.argsort(-scores)[:5]
        ms = (time.perf_counter() - start) * 1000
        return item_ids[top], scores[top], ms

    ids, scores, ms = recommend(history, events)
    recent = [f"{e}:{i}" for i, e in zip(history, events) if i][:3]
    _show(f"\nUser {user}, recent events {recent} ({ms:.1f} ms):", ids, scores, titles)
    # A fresh cart event for the item least like the current top one: the clearest change.
    new_item = item_ids[np.argmin(items @ items[prepared.catalog_index([ids[0]])[0]])]
    hist2 = [new_item] + history[:-1]
    evs2 = ["cart"] + events[:-1]
    ids2, scores2, ms2 = recommend(hist2, evs2)
    _show(f"\nSame user right after a new cart event for {new_item} "
          f"({titles.get(new_item, '')[:40]}) ({ms2:.1f} ms):", ids2, scores2, titles)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="synthetic", choices=sorted(_CONFIGS))
    parser.add_argument("--workdir", default="runs/demo")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    cfg = config_lib.load(str(root / "configs" / _CONFIGS[args.dataset]), args.set)

    from tfrec.data import prepared as prepared_lib
    from tfrec.evaluation import run as evaluation_run
    from tfrec.training import run as training_run

    start = time.perf_counter()
    prepared = prepared_lib.prepare(cfg)
    training_run.train_all(cfg, args.workdir, prepared=prepared)
    trained = time.perf_counter()
    evaluation_run.evaluate_workdir(args.workdir, prepared)
    realtime_example(cfg, args.workdir, prepared)
    print(f"\nDemo done: training {trained - start:.0f}s, total {time.perf_counter() - start:.0f}s. "
          f"TensorBoard: tensorboard --logdir {args.workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
