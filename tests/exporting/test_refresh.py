"""`tfrec index refresh`: new, changed and retired items in a new served version."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tests.exporting.conftest import request
from tfrec import cli, errors
from tfrec import config as config_lib
from tfrec.exporting import add_items, ivf_store, labels, writer
from tfrec.exporting import index as index_lib
from tfrec.pipelines import export as export_run
from tfrec.pipelines import refresh as refresh_run


def _digest(folder):
    """Path -> sha256 of every file under `folder`."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _served_ids(loaded, run, k, **inputs):
    """Item ids `retrieve` and `recommend` of a loaded SavedModel answer, per row."""
    signatures = loaded.signatures
    user = run.prepared.spec.users[0]
    inputs = request([user, "nobody"], [[], []], k=k, **inputs)
    out = {}
    for name in ("retrieve", "recommend"):
        result = signatures[name](**{key: tf.constant(v) for key, v in inputs.items()})
        out[name] = [[i.decode() for i in row if i] for row in result["item_ids"].numpy()]
    return out


@pytest.fixture
def change(run, tmp_path):
    """A copy of the shared export's version 1 and a change: one new, one changed, one retired."""
    export_dir = tmp_path / "export"
    shutil.copytree(run.export_dir / "tfrec" / "1", export_dir / "tfrec" / "1")
    catalog = run.trained.catalog
    changed, retired = catalog.item_ids[1], catalog.item_ids[2]
    items = tmp_path / "items.csv"
    pd.DataFrame(
        {
            "item_id": ["fresh-1", changed],
            "title": [f"{catalog.titles[0]} deluxe", "Completely different garden hose"],
            "category": ["", catalog.categories[3]],
            "price": [12.5, 3.0],
        }
    ).to_csv(items, index=False)
    retire = tmp_path / "retire.txt"
    retire.write_text(f"{retired}\n")
    return export_dir, items, retire, changed, retired


def test_refresh_adds_changes_and_retires_items_in_a_new_version(run, change):
    export_dir, items, retire, changed, retired = change
    before = _digest(export_dir / "tfrec" / "1")
    result = refresh_run.refresh(
        run.workdir, export_dir, items=items, retire=retire, trained=run.trained
    )
    n = len(run.trained.catalog)
    assert (result["version"], result["base_version"]) == (2, 1)
    assert (result["new"], result["changed"], result["retired"]) == (1, 1, 1)
    assert result["num_items"] == n and result["index"] == "brute_force"
    assert list(result["models"]) == ["tfrec"]  # the copy serves no `tfrec_text`
    assert _digest(export_dir / "tfrec" / "1") == before  # a published version is never touched
    assert labels.load(export_dir).labels("tfrec") == {"canary": 2, "stable": 1}

    new_dir = export_dir / "tfrec" / "2"
    old = index_lib.ItemIndex.load(export_dir / "tfrec" / "1" / writer.TFREC_ASSETS)
    new = index_lib.ItemIndex.load(new_dir / writer.TFREC_ASSETS)
    # Kept rows keep their order (the changed one in place), the new item comes last.
    assert new.item_ids.tolist() == [i for i in old.item_ids if i != retired] + ["fresh-1"]
    row, old_row = new.item_ids.tolist().index(changed), old.item_ids.tolist().index(changed)
    frame = add_items.read_items(items, known_ids=old.item_ids, changes=True)
    expected = add_items.embed_items(frame.iloc[[1]], run.trained.spec, run.trained.candidate_model)
    np.testing.assert_allclose(new.vectors[row], expected.vectors[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(new.vectors[row], old.vectors[old_row], atol=1e-3)
    assert new.titles[row] == "Completely different garden hose"
    info = json.loads((new_dir / writer.TFREC_ASSETS / "export.json").read_text())
    assert info["catalog_change"] == {
        "base_version": 1,
        "new": 1,
        "changed": 1,
        "retired": 1,
        "num_items": n,
    }

    # The served SavedModel holds the changed vector and answers with the new item, never the
    # retired one, in every signature; the old version still knows the retired item.
    loaded = tf.saved_model.load(str(new_dir))
    np.testing.assert_allclose(loaded.vectors.numpy()[row], new.vectors[row])
    served = _served_ids(loaded, run, k=n)
    assert all(len(r) == n for r in served["retrieve"])
    for rows in served.values():
        for ids in rows:
            assert retired not in ids
    assert all("fresh-1" in ids for ids in served["retrieve"])
    # A retired item in the recent events is unknown to the index: never cited as a reason.
    user = run.prepared.spec.users[0]
    events = [(retired, "view"), (changed, "view"), (run.trained.catalog.item_ids[4], "cart")]
    inputs = request([user], [events], k=n)
    cited = loaded.signatures["recommend"](**{key: tf.constant(v) for key, v in inputs.items()})
    cited_ids = {i.decode() for i in cited["explanation_item_ids"].numpy().ravel()}
    assert retired not in cited_ids and cited_ids & {changed, events[2][0]}
    assert (
        retired
        in _served_ids(tf.saved_model.load(str(export_dir / "tfrec" / "1")), run, k=n)["retrieve"][
            0
        ]
    )


def test_bad_changes_are_refused_naming_file_row_and_field(run, change, tmp_path, capsys):
    export_dir, items, retire, changed, retired = change
    before = _digest(export_dir / "tfrec")
    both = tmp_path / "both.txt"
    both.write_text(f"{retired}\n{changed}\n")
    with pytest.raises(
        errors.DataError,
        match=re.escape(f"file `{both}`, row 2, field `item_id`: expected an id that is not also"),
    ):
        refresh_run.refresh(run.workdir, export_dir, items=items, retire=both, trained=run.trained)
    everything = tmp_path / "everything.txt"
    everything.write_text("\n".join(run.trained.catalog.item_ids) + "\n")
    with pytest.raises(
        errors.DataError, match=re.escape(f"file `{everything}`: expected at least")
    ):
        refresh_run.refresh(run.workdir, export_dir, retire=everything, trained=run.trained)
    untitled = tmp_path / "untitled.csv"
    untitled.write_text(f"item_id,title\nfresh-2,Mug\n{changed},\n")
    code = cli.main(
        ["index", "refresh", "--workdir", str(run.workdir), "--export-dir", str(export_dir)]
        + ["--items", str(untitled)]
    )
    assert code == 2
    assert f"file `{untitled}`, row 3, field `title`" in capsys.readouterr().err
    assert _digest(export_dir / "tfrec") == before  # nothing written by a refused change
    with pytest.raises(errors.WorkdirError, match="holds no version of model `tfrec`"):
        refresh_run.refresh(run.workdir, tmp_path / "empty", items=items, trained=run.trained)


def test_an_ivf_export_stays_ivf_rebuilt_over_the_refreshed_items(run, change):
    export_dir, items, retire, changed, retired = change
    # The index settings a version was exported with are those its config.yaml records
    # (`tfrec export --set index.kind=ivf` writes them there); set so without a second export.
    recorded = export_dir / "tfrec" / "1" / writer.TFREC_ASSETS / "config.yaml"
    config = config_lib.with_overrides(
        config_lib.load(str(recorded)),
        ["index.kind=ivf", "index.nlist=4", "index.nprobe=4"],
        ["index"],
    )
    recorded.write_text(config_lib.dump(config))
    # The refresh is given the run's own (exact) config: the served version's settings win.
    assert run.trained.config.index.kind != "ivf"
    result = refresh_run.refresh(
        run.workdir, export_dir, items=items, retire=retire, trained=run.trained
    )
    assert result["index"] == "ivf" and result["version"] == 2
    new_dir = export_dir / "tfrec" / "2"
    new = index_lib.ItemIndex.load(new_dir / writer.TFREC_ASSETS)
    loaded = tf.saved_model.load(str(new_dir))
    # The index inside the SavedModel was built from exactly the refreshed vectors and ids.
    assert loaded.item_index.fingerprint.numpy().decode() == ivf_store.fingerprint(
        new.vectors, new.item_ids
    )
    served = _served_ids(loaded, run, k=len(new))
    assert all("fresh-1" in ids and retired not in ids for ids in served["retrieve"])
    assert all(retired not in ids for ids in served["recommend"])
    recorded_now = config_lib.load(str(new_dir / writer.TFREC_ASSETS / "config.yaml"))
    assert (recorded_now.index.kind, recorded_now.index.nlist) == ("ivf", 4)


def test_export_add_items_still_refuses_served_ids(run, change):
    export_dir, items, _, changed, _ = change
    with pytest.raises(
        errors.DataError, match=re.escape(f"file `{items}`, row 3, field `item_id`: expected a new")
    ):
        export_run.export(
            run.workdir, export_dir, trained=run.trained, with_text=False, add_items=items
        )
    assert writer.versions(export_dir / "tfrec") == [1]
