"""Cold-start items: CSV validation, and a served new version that knows the new items."""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest

from tests.exporting.conftest import rank_request, request
from tfrec import cli, errors
from tfrec.exporting import add_items
from tfrec.pipelines import export as export_run
from tfrec.serving import Client
from tfrec.serving import server as server_lib


@pytest.mark.parametrize(
    "text, where",
    [
        ("item_id,title\n,Red mug\n", "row 2, field `item_id`"),
        ("item_id,title\na,Red mug\na,Blue mug\n", "row 3, field `item_id`"),
        ("item_id,title\nold,Red mug\n", "row 2, field `item_id`"),
        ("item_id,title,price\nb,Red mug,cheap\n", "row 2, field `price`"),
        ("item_id,title\nb,\n", "row 2, field `title`"),
        ("item_id,name\nb,x\n", "row 1, field `name`"),
        ("item_id\nb\n", "row 1, field `title`"),
        ("item_id,title\nb,x,y\n", "row 2: expected 2 fields"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path, text, where):
    path = tmp_path / "new.csv"
    path.write_text(text)
    with pytest.raises(errors.DataError, match=re.escape(f"file `{path}`, {where}")):
        add_items.read_items(path, known_ids=["old"])


def test_served_version_picks_up_new_items(run, tmp_path, capsys):
    export_dir = tmp_path / "export"
    # Version 1 of the shared export (copied: the shared one stays as other tests expect it).
    shutil.copytree(run.export_dir / "tfrec" / "1", export_dir / "tfrec" / "1")
    csv = tmp_path / "new.csv"
    title = run.trained.catalog.titles[0]
    csv.write_text(f"item_id,title,category,price\nnew-001,{title} deluxe,,12.5\n")
    client = None
    with server_lib.start(export_dir, grpc_port=0, rest_port=0, poll_seconds=0.2) as server:
        client = Client(server.grpc_target)
        user = run.prepared.spec.users[0]
        # k is at most the served catalog's size: all items of each version.
        size = len(run.trained.catalog)
        before = client.predict("tfrec", request([user], [[]], k=size), "retrieve")
        assert b"new-001" not in before["item_ids"][0].tolist()
        export_run.export(
            run.workdir, export_dir, trained=run.trained, with_text=False, add_items=csv
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            states = client.status("tfrec")["model_version_status"]
            if any(s["version"] == "2" and s["state"] == "AVAILABLE" for s in states):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"version 2 never became available: {states}")
        after = client.predict("tfrec", request([user], [[]], k=size + 1), "retrieve", version=2)
        ids = after["item_ids"][0].tolist()
        assert b"new-001" in ids and len(ids) == len(run.trained.catalog) + 1
        # Its row is in the in-graph lookup: excluding it as a recent item removes it.
        gone = client.predict(
            "tfrec",
            request([user], [[("new-001", "view")]], k=size + 1, exclude_recent=True),
            "retrieve",
            version=2,
        )
        assert b"new-001" not in gone["item_ids"][0].tolist()
        ranked = client.predict(
            "tfrec",
            rank_request(request([user], [[]]), [["new-001"]]),
            "rank",
            version=2,
        )
        assert np.isfinite(ranked["scores"]).all()
        code = cli.main(
            [
                "recommend",
                "--server",
                server.rest_target,
                "--rest",
                "--user",
                user,
                "--recent",
                "new-001",
                "--events",
                "view",
                "--k",
                "3",
            ]
        )
        assert code == 0
        printed = capsys.readouterr().out.splitlines()
        assert printed[0].split()[:3] == ["rank", "item_id", "score"] and len(printed) == 4
    client.close()
