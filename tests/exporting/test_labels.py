"""The label state (labels.json): moves, history, rollback lineage, adoption and rendering."""

from __future__ import annotations

import json

import pytest

from tfrec import errors
from tfrec.exporting import labels, server_configs
from tfrec.serving import model_config


def _versions(export_dir, model, versions):
    for v in versions:
        (export_dir / model / str(v)).mkdir(parents=True)
        (export_dir / model / str(v) / "saved_model.pb").write_bytes(b"pb")


def _specs(export_dir, state=None) -> dict:
    text = server_configs.models_config(export_dir, state=state)
    return {
        s.name: (s.policy, s.versions, s.labels)
        for s in model_config.parse_models_config(text, export_dir)
    }


def test_exports_move_canary_only_and_stable_stays(tmp_path):
    state = labels.LabelState()
    assert [(c.label, c.to_version) for c in labels.record_export(state, ["m"], 1, "x")] == [
        ("canary", 1),
        ("stable", 1),
    ]  # the first export is both
    labels.record_export(state, ["m"], 2, "x")
    labels.record_export(state, ["m"], 3, "x")
    assert state.labels("m") == {"stable": 1, "canary": 3}
    assert [(c.label, c.from_version, c.to_version, c.action) for c in state.history[2:]] == [
        ("canary", 1, 2, "export"),
        ("canary", 2, 3, "export"),
    ]
    _versions(tmp_path, "m", (1, 2, 3))
    # Exactly the labelled versions: 2, never labelled stable, is not served.
    assert _specs(tmp_path, state) == {"m": ("specific", (1, 3), {"stable": 1, "canary": 3})}


def test_rollback_walks_back_promotions_instead_of_toggling():
    state = labels.LabelState()
    for version in (1, 2, 3):
        labels.record_export(state, ["m"], version, "export")
        state.move("m", "stable", version, "promote", "ok")
    assert state.stable_lineage("m") == [1, 2, 3]
    assert state.rollback_target("m") == 2
    state.move("m", "stable", 2, "rollback", "bad")
    assert state.rollback_target("m") == 1  # not 3: a second rollback goes further back
    state.move("m", "stable", 1, "rollback", "worse")
    assert state.rollback_target("m") is None
    state.move("m", "stable", 3, "promote", "fixed")
    assert state.stable_lineage("m") == [1, 3]
    state.move("m", "stable", 2, "rollback", "to a version stable never named after 1")
    assert state.stable_lineage("m") == [1, 2]
    # Served: stable 2, canary 3, and 1 where a rollback would go.
    assert state.served_versions("m") == [1, 2, 3]


def test_state_round_trips_and_records_who_and_why(tmp_path):
    state = labels.LabelState(base_prefix="/models")
    labels.record_export(state, ["m", "m_text"], 1, "tfrec export --workdir runs/a")
    labels.save(tmp_path, state)
    raw = json.loads((tmp_path / "labels.json").read_text())
    assert raw["models"] == {"m": {"canary": 1, "stable": 1}, "m_text": {"canary": 1, "stable": 1}}
    first = raw["history"][0]
    assert list(first) == ["time", "model", "label", "from", "to", "action", "who", "why"]
    assert first["who"] == labels.who() and "@" in first["who"]
    assert first["why"] == "tfrec export --workdir runs/a" and first["time"].endswith("Z")
    loaded = labels.load(tmp_path)
    assert loaded == state


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("{", r"labels.json`: expected JSON"),
        ('{"format": 2}', r"field `format`: expected 1, received 2"),
        (
            '{"format": 1, "models": {"m": {"stable": 0}}, "history": []}',
            r"field `models.m.stable`: expected a positive int, received 0",
        ),
        (
            '{"format": 1, "models": {"m": {"gold": 1}}, "history": []}',
            r"field `models.m`: expected an object of labels",
        ),
        ('{"format": 1, "models": {}, "history": [{"to": 1}]}', r"field `history\[0\]`"),
    ],
)
def test_a_broken_labels_file_is_refused_naming_file_and_field(tmp_path, content, pattern):
    (tmp_path / "labels.json").write_text(content)
    with pytest.raises(errors.DataError, match=pattern):
        labels.load(tmp_path)


def test_an_older_export_folder_is_adopted_from_its_models_config(tmp_path):
    _versions(tmp_path, "m", (1, 2, 3))
    _versions(tmp_path, "other", (4, 5))
    # What a server follows today: stable 1 (not the derived 2), canary 3.
    (tmp_path / "models.config").write_text(
        'model_config_list { config { name: "m" base_path: "m" '
        'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 } } }'
    )
    state = labels.LabelState()
    changes = labels.adopt(state, tmp_path)
    assert state.models == {"m": {"stable": 1, "canary": 3}, "other": {"stable": 4, "canary": 5}}
    assert {c.why for c in changes if c.model == "m"} == {"adopted from models.config"}
    assert {c.action for c in changes} == {"adopt"}
    assert labels.adopt(state, tmp_path) == []  # known models are left alone


def test_check_version_names_model_label_and_what_is_missing(tmp_path):
    _versions(tmp_path, "m", (1,))
    (tmp_path / "m" / "2").mkdir()  # a folder without saved_model.pb
    assert labels.check_version(tmp_path, "m", 1, "stable") == 1
    with pytest.raises(errors.WorkdirError, match=r"`stable` of model `m` cannot name version 2: .*"
                       r"is incomplete \(no saved_model.pb\).*found \[1\]"):  # fmt: skip
        labels.check_version(tmp_path, "m", 2, "stable")
    with pytest.raises(errors.WorkdirError, match=r"version 7: .* does not exist"):
        labels.check_version(tmp_path, "m", 7, "stable")


def test_models_config_leaves_out_labels_of_versions_removed_by_hand(tmp_path):
    _versions(tmp_path, "m", (2, 3))
    state = labels.LabelState(models={"m": {"stable": 1, "canary": 3}})
    assert _specs(tmp_path, state) == {"m": ("specific", (3,), {"canary": 3})}
