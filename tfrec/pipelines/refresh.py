"""`tfrec index refresh`: new, changed and retired items as a new version, without retraining."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from tfrec import errors
from tfrec.exporting import catalog_change, labels, writer
from tfrec.pipelines import export as export_run


def refresh(
    workdir: os.PathLike | str,
    export_dir: os.PathLike | str,
    items: Optional[os.PathLike | str] = None,
    retire: Optional[os.PathLike | str] = None,
    model_name: str = "tfrec",
    base_prefix: Optional[str] = None,
    overrides: Sequence[str] = (),
    trained: Optional[export_run.Trained] = None,
) -> dict:
    """Writes one new version of the served models whose index is the newest one, changed.

    Starting from the item index of the newest version of `<model_name>`: ids of `items` not
    served are appended; served ids are re-embedded by the trained item tower from their row
    (text, category, price) and keep their position; ids of `retire` are dropped. The new
    version is written like `tfrec export` writes one (all models as one step, labelled
    `canary`) for `<model_name>` and, when it is served, `<model_name>_text`. The index
    settings of the newest version are kept; an IVF index is rebuilt over the new vectors.

    Args:
        workdir: path. The trained run the served versions were exported from.
        export_dir: path. The export folder (`tfrec export --export-dir`).
        items: path or None. Items CSV: item_id,title[,description,category,price].
        retire: path or None. Ids to drop (see `catalog_change.read_retired`).
        model_name: str. Defaults to "tfrec".
        base_prefix: str or None. As `tfrec export --base-prefix`; None: the one the last
            export recorded.
        overrides: sequence of str. `index.KEY=VALUE` changes of the served index settings.
        trained: Trained or None. Reused instead of loading `workdir`.

    Returns:
        dict: `export`'s result (version, models, num_items, index "brute_force" or "ivf",
        base_version, new, changed, retired), `not_refreshed` (models of the folder
        left on their version: compressed variants, whose index is part of their SavedModel)
        and `seconds`, the wall time.

    Raises:
        WorkdirError: no version of `<model_name>` to refresh.
        DataError: a bad row of either file, naming the file, row and field.
    """
    start = time.perf_counter()
    export_dir = Path(export_dir)
    change = catalog_change.CatalogChange(
        items=None if items is None else Path(items),
        retire=None if retire is None else Path(retire),
    )
    if not writer.versions(export_dir / model_name):
        raise errors.WorkdirError(
            f"`--export-dir` {str(export_dir)!r} holds no version of model `{model_name}` to "
            "refresh; run `tfrec export` first"
        )
    text_model = model_name + export_run.TEXT_SUFFIX
    with_text = bool(writer.versions(export_dir / text_model))
    result = export_run.export(
        workdir,
        export_dir,
        model_name=model_name,
        with_text=with_text,
        trained=trained,
        base_prefix=base_prefix,
        overrides=overrides,
        catalog_change=change,
        keep_base_prefix=True,
        why=f"tfrec index refresh --workdir {workdir}",
    )
    written = {model_name, text_model}
    result["not_refreshed"] = sorted(
        name
        for name in labels.load(export_dir).models
        if name.startswith(model_name + "_") and name not in written
    )
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def format_summary(result: dict) -> str:
    """The lines `tfrec index refresh` prints: what changed, the version and the time."""
    lines = [
        f"version {result['version']} (from {result['base_version']}): {result['new']} new, "
        f"{result['changed']} changed, {result['retired']} retired; {result['num_items']} "
        f"items served, index {result['index']}"
        + (" (rebuilt over the new vectors)" if result["index"] == "ivf" else "")
        + f"; {result['seconds']:.1f} s"
    ]
    lines += [f"  {name}: {path}" for name, path in sorted(result["models"].items())]
    if result["not_refreshed"]:
        lines.append(
            "  not refreshed (their index is inside the compressed SavedModel; run `tfrec "
            "compress` and `tfrec export --with-compressed` again): "
            + ", ".join(result["not_refreshed"])
        )
    return "\n".join(lines)
