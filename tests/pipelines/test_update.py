"""`tfrec update`: a new artifact warm-started from the suite's tiny model on a later window."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfrec
from tfrec import artifact, cli, errors
from tfrec.data import vocab_growth
from tfrec.models import warm_start
from tfrec.pipelines import update as update_run
from tfrec.training import trainer

NEW_ITEM = "new-item-1"
NEW_USERS = ("new-user-1", "new-user-2")


def _write_window(source: Path, folder: Path, rows: int = 400, seed: int = 1) -> tuple:
    """A later window: the artifact's last `rows` events moved past its end, plus a new item
    (with its own catalog row) that new and old users view, cart and buy."""
    inter = artifact.Artifact(source).dataset().interactions
    span = int(inter["timestamp"].max() - inter["timestamp"].min())
    later = inter.tail(rows).copy()
    later["timestamp"] = later["timestamp"] + span // 2
    rng = np.random.default_rng(seed)
    old_users = list(rng.choice(inter["user_id"].unique(), 6, replace=False))
    times = np.sort(rng.integers(later["timestamp"].min(), later["timestamp"].max(), size=60))
    new = pd.DataFrame(
        {
            "user_id": rng.choice(list(NEW_USERS) + old_users, 60),
            "item_id": NEW_ITEM,
            "timestamp": times,
            "event_type": rng.choice(["view", "cart", "purchase"], 60),
            "value": 1.0,
            "quantity": 1.0,
            "price": 14.99,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    events = pd.concat([later, new]).sort_values("timestamp", kind="stable")
    events.to_csv(folder / "events.csv", index=False)
    items = pd.DataFrame(
        {
            "item_id": [NEW_ITEM],
            "title": ["Rose vitamin c face cream by Newfield"],
            "description": ["A new face cream."],
            "category": ["beauty"],
            "price": [14.99],
        }
    )
    items.to_csv(folder / "items.csv", index=False)
    return folder / "events.csv", folder / "items.csv"


def _digest(folder: Path) -> str:
    """sha256 over every file's relative path, bytes and mtime under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
        digest.update(str(path.stat().st_mtime_ns).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def window(tiny_run, tmp_path_factory):
    return _write_window(tiny_run.artifact, tmp_path_factory.mktemp("window"))


# ---- Default suite: no training.


def test_warm_start_copies_every_old_row_and_gives_new_ids_the_oov_row(tiny_run, window):
    source = artifact.Artifact(tiny_run.artifact)
    events = pd.read_csv(window[0], dtype={"user_id": str, "item_id": str})
    catalog = vocab_growth.merge_catalog(source.dataset().items, pd.read_csv(window[1]))
    old_spec = source.spec()
    spec = vocab_growth.grow_spec(old_spec, events, catalog)
    assert spec.items[: len(old_spec.items)] == old_spec.items
    assert spec.users[: len(old_spec.users)] == old_spec.users
    assert NEW_ITEM in spec.items[len(old_spec.items) :]
    assert set(NEW_USERS) <= set(spec.users[len(old_spec.users) :])

    old = trainer.load_trained(source.config, source.root, source.prepared())
    prepared = source.prepared()
    grown_prepared = type(prepared)(
        dataset=prepared.dataset,
        split=prepared.split,
        spec=spec,
        table=prepared.table,
        item_counts=np.ones(len(spec.items), np.int64),
        data=prepared.data,
    )
    new = trainer.build_model(source.config, grown_prepared, "tfrec")
    for part in ("query_model", "candidate_model"):
        warm_start.copy_weights(getattr(old, part).weights, getattr(new, part).weights)
    tables = {
        "item_embedding": (new.candidate_model, old.candidate_model, old_spec.items, 1),
        "user_embedding": (new.query_model, old.query_model, old_spec.users, 1),
    }
    for name, (new_tower, old_tower, ids, reserved) in tables.items():
        after = new_tower.get_layer(name).embeddings.numpy()
        before = old_tower.get_layer(name).embeddings.numpy()
        np.testing.assert_array_equal(after[: len(ids) + reserved], before)
        np.testing.assert_array_equal(after[len(ids) + reserved :][0], before[0])  # OOV row
    # The new item's id row is the OOV row: its embedding starts where it stood as unknown.
    item = {
        "item_id": tf.constant([NEW_ITEM]),
        "item_token_ids": tf.constant(np.ones([1, spec.text_length], np.int32)),
        "item_category": tf.constant(["beauty"]),
        "item_price": tf.constant([0.5], "float32"),
    }
    np.testing.assert_allclose(
        new.candidate_model(item).numpy(), old.candidate_model(item).numpy(), atol=1e-6
    )


@pytest.mark.parametrize(
    "header, row, expected",
    [
        ("customer,item_id,timestamp", "u1,i1,1700000000", r"row 1, field `user_id`"),
        ("user_id,item_id,timestamp,colour", "u1,i1,1700000000,red", r"row 1, field `colour`"),
        ("user_id,item_id,timestamp,event_type", "u1,i1,1700000000,like", r"row 2, field"),
    ],
)
def test_an_events_file_of_an_unknown_schema_is_refused(tiny_run, tmp_path, header, row, expected):
    path = tmp_path / "events.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    with pytest.raises(errors.DataError, match=f"file `{path}`, {expected}"):
        update_run.update(tiny_run.artifact, path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_names_the_bad_file_and_exits_2(tiny_run, tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id\nu1,i1\n", encoding="utf-8")
    argv = ["update", "--artifact", str(tiny_run.artifact), "--events", str(path)]
    assert cli.main([*argv, "--workdir", str(tmp_path / "out")]) == 2
    assert f"file `{path}`, row 1, field `timestamp`" in capsys.readouterr().err


def test_an_update_never_writes_into_the_artifact_it_starts_from(tiny_run, window):
    for target in (tiny_run.artifact, tiny_run.run, tiny_run.artifact / "sub"):
        with pytest.raises(errors.WorkdirError, match="never modifies"):
            update_run.update(tiny_run.artifact, window[0], target)


def test_only_update_settings_may_change(tiny_run, window, tmp_path):
    with pytest.raises(errors.ConfigError, match="train.epochs"):
        update_run.update(tiny_run.artifact, window[0], tmp_path, overrides=["train.epochs=3"])


# ---- One real update (about 45 s on 2 cores): slow.


@pytest.fixture(scope="module")
def updated(tiny_run, window, tmp_path_factory):
    before = _digest(tiny_run.artifact)
    out = tmp_path_factory.mktemp("updated") / "run"
    summary = update_run.update(
        tiny_run.artifact,
        window[0],
        out,
        items=window[1],
        overrides=["update.epochs=1", "update.retire_after_days=30"],
    )
    return summary, before, Path(summary["artifact"])


@pytest.mark.slow
def test_the_source_artifact_is_unchanged(tiny_run, updated):
    _, before, _ = updated
    assert _digest(tiny_run.artifact) == before


@pytest.mark.slow
def test_the_new_artifact_grows_vocabularies_and_catalog_stably(tiny_run, window, updated):
    summary, _, path = updated
    old, new = artifact.Artifact(tiny_run.artifact), artifact.Artifact(path)
    vocab_growth.check_growth(old.spec(), new.spec())
    assert NEW_ITEM in new.spec().items and NEW_ITEM not in old.spec().items
    old_catalog, catalog = old.catalog(), new.catalog()
    assert catalog["item_id"].tolist()[: len(old_catalog)] == old_catalog["item_id"].tolist()
    row = catalog.set_index("item_id").loc[NEW_ITEM]
    assert row["title"] == "Rose vitamin c face cream by Newfield"
    events = pd.read_csv(window[0], dtype={"item_id": str})
    assert row["first_seen"] == events.loc[events["item_id"] == NEW_ITEM, "timestamp"].min()
    assert new.config == old.config
    record = json.loads((path / "update.json").read_text())
    assert record["from"]["fingerprint"] == old.manifest["data"]["fingerprint"]
    assert record["settings"]["epochs"] == 1 and record["retired"]["after_days"] == 30
    # Rows are kept: a retired id is still in its vocabulary.
    assert set(record["retired"]["items"]) <= set(new.spec().items)
    assert new.manifest["provenance"]["updated_from"]["artifact"] == str(old.root)
    assert summary["towers"]["epochs_run"] == 1


@pytest.mark.slow
def test_the_updated_model_loads_and_recommends_the_new_item(updated):
    _, _, path = updated
    rec = tfrec.load(path)
    shown = rec.recommend(NEW_USERS[0], [(NEW_ITEM, "cart"), (NEW_ITEM, "view")], k=10)
    assert NEW_ITEM in [r["item_id"] for r in shown]
