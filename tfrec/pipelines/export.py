"""`tfrec export`: a model artifact to new SavedModel versions in TF Serving's layout."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import errors
from tfrec.exporting import catalog_change as change_lib
from tfrec.exporting import index as index_lib
from tfrec.exporting import labels, server_configs, signatures, warmup, writer

TEXT_SUFFIX = "_text"  # the variant whose signatures take `query_text` (needs TF Text ops)


# What an export reads (tests and the serving bench build it directly to skip reloading).
Trained = artifact_lib.Trained


def serving_module(
    trained: Trained, catalog: index_lib.ItemIndex, with_text: bool = False, item_index=None
) -> signatures.ServingModule:
    """The exported module of a trained run over `catalog`, configured by its config.

    `with_text` adds the query-text input (and the tokenizer, so TF Text ops) to the signatures;
    `item_index` is a prebuilt `signatures.build_item_index` (None: built when configured).
    """
    return signatures.from_config(
        trained.config,
        trained.spec,
        trained.query_model,
        catalog,
        ranker=trained.ranker,
        prior=trained.prior,
        blend=trained.blend,
        with_text=with_text,
        item_index=item_index,
    )


def load(workdir: os.PathLike | str) -> Trained:
    """The loaded model of the artifact at `workdir` (or in it): `Artifact.load_trained`."""
    return artifact_lib.Artifact(workdir).load_trained()


def compressed_variants(workdir: os.PathLike | str) -> dict[str, Path]:
    """Variant name -> SavedModel folder, for every SavedModel under `<workdir>/compression`."""
    root = Path(workdir) / "compression"
    found: dict[str, Path] = {}
    for pb in sorted(root.rglob("saved_model.pb")) if root.is_dir() else []:
        folder = pb.parent
        # `<name>/<version>/saved_model.pb` is named after <name>; a bare folder after itself.
        named = folder.parent if folder.name.isdigit() else folder
        key = named.relative_to(root).as_posix().replace("/", "_") or "compressed"
        found.setdefault(key, folder)
    return found


def export(
    workdir,
    export_dir,
    version: Optional[int] = None,
    model_name: str = "tfrec",
    add_items: Optional[os.PathLike | str] = None,
    with_text: bool = True,
    with_compressed: bool = False,
    trained: Optional[Trained] = None,
    base_prefix: Optional[str] = None,
    overrides: Sequence[str] = (),
    catalog_change: Optional[change_lib.CatalogChange] = None,
    keep_base_prefix: bool = False,
    why: Optional[str] = None,
) -> dict:
    """Writes one new version of each served model of `workdir` under `export_dir`, as one step.

    Models: `<model_name>` (retrieve, rank, recommend; core TF ops only),
    `<model_name>_text` (the same with `query_text`; needs TF Text's ops) and, with
    `with_compressed`, `<model_name>_<variant>` copies of the SavedModels under
    `<workdir>/compression`. All get the same version number.

    The order is what keeps a watching server consistent, even when the export is killed:
    1. under the folder's lock, finish or clean up what a killed export left
       (`writer.recover`);
    2. write every model's version into a temporary folder;
    3. once all are complete, rename them into place (a journal lets the next export finish
       renames cut short);
    4. then label the new version `canary` in `labels.json` (and `stable` too on a model's
       first export; otherwise `stable` stays until `tfrec promote`), and rewrite
       models.config from it, batching_parameters.txt and monitoring.config, each
       atomically.

    Args:
        workdir: path. A trained run.
        export_dir: path. The model base path a server watches.
        version: int or None. The version number; None: newest existing + 1.
        model_name: str. Defaults to "tfrec".
        add_items: path or None. A CSV of new items (see `add_items.read_items`) appended to
            the index of the newest existing version, embedded by the item tower: the
            `catalog_change` that only adds.
        with_text: bool. Also export the `_text` model. Defaults to True.
        with_compressed: bool. Also export compressed variants. Defaults to False.
        trained: Trained or None. Reused instead of loading `workdir`.
        base_prefix: str or None. Absolute folder under which the server finds the models
            (`base_path` in models.config), e.g. "/models" in a container. Defaults to the
            absolute path of `export_dir`.
        overrides: sequence of str. `index.KEY=VALUE` settings of the item index (e.g.
            `index.kind=ivf`); the rest of the trained config is fixed.
        catalog_change: CatalogChange or None. Items added, changed or retired, starting from
            the index of the newest existing version; its `index` settings (exact or IVF)
            are kept unless `overrides` change them. None: the trained catalog.
        keep_base_prefix: bool. With `base_prefix` None, keep the one the folder's last
            export recorded instead of the default. Defaults to False.
        why: str or None. Recorded in the label history; None: the export command.

    Returns:
        dict: version, model name -> version folder, number of items; with a catalog change
        also `base_version` and its `new`, `changed` and `retired` counts.
    """
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise errors.ConfigError(
            f"`--model-name` must be a plain folder name, received {model_name!r}"
        )
    server_configs.check_base_prefix(base_prefix)
    if add_items is not None:
        if catalog_change is not None:
            raise errors.ConfigError(
                "`add_items` is a catalog change of its own: pass it or `catalog_change`, "
                "received both"
            )
        catalog_change = change_lib.CatalogChange(items=Path(add_items), changes=False)
    export_dir = Path(export_dir)
    variants = compressed_variants(artifact_lib.resolve(workdir)) if with_compressed else {}
    if with_compressed and not variants:
        raise errors.WorkdirError(
            "`--with-compressed`: expected SavedModels under "
            f"`{artifact_lib.resolve(workdir) / 'compression'}`, "
            "found none; run `tfrec compress` first"
        )
    trained = trained or load(workdir)
    if overrides and catalog_change is None:
        # Checked before the lock; with a catalog change they apply to the served settings.
        trained = _with_index_overrides(trained, trained.config.index, overrides)
        overrides = ()
    with writer.export_lock(export_dir):
        state, changed = labels.recovered(export_dir)
        if base_prefix is None and keep_base_prefix:
            base_prefix = state.base_prefix
        if changed:  # a finished commit's versions, or labels adopted from an older export
            labels.save(export_dir, state)
            server_configs.write(export_dir, base_prefix, state)
        applied = None
        if catalog_change is not None:
            trained, applied = _changed_catalog(
                trained, export_dir / model_name, catalog_change, overrides
            )
        return _export_locked(
            state,
            workdir,
            export_dir,
            trained,
            version,
            model_name,
            with_text,
            variants,
            base_prefix,
            applied,
            why or f"tfrec export --workdir {workdir}",
        )


def _export_locked(
    state: labels.LabelState,
    workdir,
    export_dir: Path,
    trained: Trained,
    version,
    model_name,
    with_text,
    variants: dict,
    base_prefix,
    applied: Optional[tuple[int, change_lib.Applied]],
    why: str,
) -> dict:
    """`export` once the folder is locked and recovered; `applied`: (base version, change)."""
    names = [model_name] + ([model_name + TEXT_SUFFIX] if with_text else [])
    names += [f"{model_name}_{v}" for v in variants]
    version = writer.next_version(export_dir, names) if version is None else version
    writer.check_version(version, export_dir, names)
    for name in names:
        if labels.STABLE in state.labels(name):
            # The new version only becomes canary: `stable` must keep naming a version.
            labels.check_version(export_dir, name, state.labels(name)[labels.STABLE], labels.STABLE)
    catalog = trained.catalog
    spec, config = trained.spec, trained.config
    info = {"version": version, "workdir": str(workdir), "num_items": len(catalog)}
    change_info: dict = {}
    if applied is not None:
        change_info = {"base_version": applied[0], **applied[1].counts()}
        info["catalog_change"] = change_info
    fills: dict[str, Callable[[Path], None]] = {}
    # Built once: both models search the same items (k-means takes a minute at 1M items).
    item_index = signatures.build_item_index(config, catalog)
    info["index"] = "brute_force" if item_index is None else "ivf"
    for name in names[: 2 if with_text else 1]:
        text = name.endswith(TEXT_SUFFIX)
        module = serving_module(trained, catalog, with_text=text, item_index=item_index)
        requests = warmup.sample_requests(
            list(module.signatures()), spec.users, list(catalog.item_ids), with_text=text
        )
        fills[name] = functools.partial(
            writer.save_module,
            module=module,
            model_name=name,
            requests=requests,
            config=config,
            spec=spec,
            index=catalog,
            info=dict(info, text=text),
        )
    for variant, source in variants.items():
        fills[f"{model_name}_{variant}"] = functools.partial(writer.copy_saved_model, source)
    written = writer.write_versions(export_dir, version, fills)
    # The label state first, then models.config rendered from it: a process killed between
    # the two leaves labels.json ahead, and the next export, promote or rollback renders it.
    labels.record_export(state, names, version, why)
    state.base_prefix = base_prefix
    labels.save(export_dir, state)
    server_configs.write(export_dir, base_prefix, state)
    return {
        "version": version,
        "models": {k: str(v) for k, v in written.items()},
        "num_items": len(catalog),
        "index": info["index"],
        **{k: v for k, v in change_info.items() if k != "num_items"},
    }


def _with_index_overrides(
    trained: Trained, index: config_lib.IndexConfig, overrides: Sequence[str]
) -> Trained:
    """`trained` whose config has the item index settings `index`, then `overrides`."""
    config = dataclasses.replace(trained.config, index=index)
    if overrides:
        config = config_lib.with_overrides(config, overrides, ("index",))
    return dataclasses.replace(trained, config=config)


def _changed_catalog(
    trained: Trained,
    model_dir: Path,
    change: change_lib.CatalogChange,
    overrides: Sequence[str],
) -> tuple[Trained, tuple[int, change_lib.Applied]]:
    """`trained` serving the newest exported index (or the catalog) with `change` made.

    The newest version's index settings are kept: an IVF export stays IVF, its partitions
    rebuilt over the changed vectors (an index is fingerprinted with the vectors and ids it
    was built from, so the old one cannot serve the new rows).

    Returns:
        (Trained, (base version or 0, Applied)).
    """
    existing = writer.versions(model_dir)
    base, index_config, base_version = trained.catalog, trained.config.index, 0
    if existing:
        base_version = existing[-1]
        assets = model_dir / str(base_version) / writer.TFREC_ASSETS
        base = index_lib.ItemIndex.load(assets)
        index_config = _served_index_config(assets, index_config)
    applied = change_lib.apply(change, base, trained.spec, trained.candidate_model)
    trained = _with_index_overrides(trained, index_config, overrides)
    return dataclasses.replace(trained, catalog=applied.index), (base_version, applied)


def _served_index_config(assets: Path, default: config_lib.IndexConfig) -> config_lib.IndexConfig:
    """The `index` settings a version was exported with (`default` when it recorded none)."""
    path = assets / "config.yaml"
    return config_lib.load(str(path)).index if path.is_file() else default
