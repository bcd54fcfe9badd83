"""The serving bench's synthetic catalogs and their three served exports."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tfrec import config as config_lib
from tfrec import request_schema
from tfrec.compression import sizes
from tfrec.serving import bench_report

if TYPE_CHECKING:  # imported where used: they load TensorFlow, which `--help` does not need
    from tfrec.exporting import index as index_lib
    from tfrec.pipelines import export as export_run


def synthetic_index(
    trained: export_run.Trained, num_items: int, seed: int = 0
) -> index_lib.ItemIndex:
    """`num_items` items `syn-0000001`...: unit vectors of the model's dimension, clustered as
    trained item towers place items (`bench_index.synthetic_items`, a two-level mixture), so
    an IVF index meets the structure it relies on rather than uniform noise.

    Categories and prices are drawn from the trained catalog, so the ranker sees real values.

    Args:
        trained: export.Trained. The loaded run.
        num_items: int. Catalog size.
        seed: int. Random seed. Defaults to 0.

    Returns:
        An ItemIndex of `num_items` synthetic items.
    """
    from tfrec.exporting import index as index_lib
    from tfrec.pipelines import bench_index

    rng = np.random.default_rng(seed)
    vectors, _ = bench_index.synthetic_items(num_items, trained.catalog.dim, seed=seed)
    numbers = np.arange(1, num_items + 1)
    return index_lib.ItemIndex(
        item_ids=np.char.add("syn-", np.char.zfill(numbers.astype(str), 7)).astype(object),
        vectors=vectors,
        titles=np.char.add("Synthetic item ", numbers.astype(str)).astype(object),
        categories=rng.choice(trained.catalog.categories, num_items),
        prices=rng.choice(trained.catalog.prices, num_items),
    )


def build_export(
    workdir: os.PathLike | str,
    trained: export_run.Trained,
    index: index_lib.ItemIndex,
    export_dir: os.PathLike | str,
    k: int,
) -> dict[str, float]:
    """Writes the three served models of one catalog into `export_dir`, version 1 each.

    `bench_report.MAIN` is what `tfrec export` writes for `index` (no text model); `F32` and
    `INT8` are the `--with-compressed` layout (query tower + index + fixed top-`k`
    `retrieve`), float32 and int8, which compare the index alone.

    Args:
        workdir: str or path-like. The trained run.
        trained: export.Trained. The loaded run.
        index: ItemIndex. The catalog to export.
        export_dir: str or path-like. Folder of the three models.
        k: int. Top-k of the compressed layout's `retrieve`, as the requests ask.

    Returns:
        dict model name -> size of its version folder in MB.
    """
    from tfrec.compression import int8_savedmodel
    from tfrec.exporting import writer
    from tfrec.pipelines import export as export_run

    out = Path(export_dir)
    ids = list(index.item_ids)
    for name, quantize in ((bench_report.F32, False), (bench_report.INT8, True)):
        module = int8_savedmodel.Int8Model(
            trained.query_model, candidates=index.vectors, candidate_ids=ids, k=k, quantize=quantize
        )

        def fill(tmp: Path, module: int8_savedmodel.Int8Model = module) -> None:
            int8_savedmodel.save(module, tmp)

        writer.write_atomically(out / name, 1, fill)
    # Last, so the models.config it writes lists all three models.
    catalog = dataclasses.replace(trained, catalog=index)
    export_run.export(workdir, out, version=1, with_text=False, trained=catalog)
    models = (bench_report.MAIN, bench_report.F32, bench_report.INT8)
    return {name: round(sizes.raw_bytes(out / name / "1") / 2**20, 1) for name in models}


def served_recall(
    trained: export_run.Trained,
    index: index_lib.ItemIndex,
    export_dir: os.PathLike | str,
    requests: Mapping[int, Sequence[dict[str, np.ndarray]]],
    ks: Sequence[int],
) -> dict[int, dict[str, float]]:
    """Recall@k of the exported main model's `retrieve` against exact search, same requests,
    for each k of `ks`, over every row of every request of each set of `requests`.

    The exported SavedModel answers the requests in process; the exact answers come from the
    same serving graph with brute force over the same items. Both are asked once for the
    largest k; recall@k compares the first k of each row's list. 1.0 when the export is exact.
    Requests of several rows (`bench_requests.batches`) check the batched search path.

    Args:
        trained: export.Trained. The loaded run.
        index: ItemIndex. The exported catalog.
        export_dir: str or path-like. Folder of the three models (`build_export`).
        requests: mapping rows per request -> sequence of requests (input name -> array
            [rows] or [rows, n]).
        ks: sequence of int. The cut-offs.

    Returns:
        dict rows per request -> {`recall@k` -> float, in order of k}.
    """
    import tensorflow as tf

    from tfrec.pipelines import export as export_run

    served = tf.saved_model.load(str(Path(export_dir) / bench_report.MAIN / "1"))
    brute = config_lib.IndexConfig(kind="brute_force")
    exact_trained = dataclasses.replace(
        trained, config=dataclasses.replace(trained.config, index=brute)
    )
    exact = export_run.serving_module(exact_trained, index)
    names = request_schema.names_of(request_schema.RETRIEVE, False, False)
    recalls = {}
    for rows, batch in requests.items():
        found = dict.fromkeys(ks, 0)
        total = dict.fromkeys(ks, 0)
        for request in batch:
            inputs = {name: tf.constant(request[name]) for name in names}
            inputs["k"] = tf.fill(tf.shape(inputs["k"]), tf.constant(max(ks), tf.int32))
            want_all = exact.retrieve(**inputs)["item_ids"].numpy().tolist()
            got_all = served.signatures["retrieve"](**inputs)["item_ids"].numpy().tolist()
            for want_row, got_row in zip(want_all, got_all, strict=True):
                for k in ks:
                    want = set(want_row[:k]) - {b""}
                    found[k] += len(want & set(got_row[:k]))
                    total[k] += len(want)
        recalls[rows] = {f"recall@{k}": round(found[k] / max(total[k], 1), 4) for k in sorted(ks)}
    return recalls
