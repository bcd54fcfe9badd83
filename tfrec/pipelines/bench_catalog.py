"""The serving bench's synthetic catalogs and their three served exports."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tfrec.compression import sizes
from tfrec.serving import bench_report

if TYPE_CHECKING:  # imported where used: they load TensorFlow, which `--help` does not need
    from tfrec.exporting import index as index_lib
    from tfrec.pipelines import export as export_run


def synthetic_index(
    trained: export_run.Trained, num_items: int, seed: int = 0
) -> index_lib.ItemIndex:
    """`num_items` items `syn-0000001`...: random unit vectors of the model's dimension.

    Categories and prices are drawn from the trained catalog, so the ranker sees real values.

    Args:
        trained: export.Trained. The loaded run.
        num_items: int. Catalog size.
        seed: int. Random seed. Defaults to 0.

    Returns:
        An ItemIndex of `num_items` synthetic items.
    """
    from tfrec.exporting import index as index_lib

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((num_items, trained.catalog.dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
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
