"""The self-contained trained model: what evaluate, compress, export and recommend read."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Union

import pandas as pd
import tensorflow as tf

from tfrec import __version__, errors, features
from tfrec import config as config_lib
from tfrec.data import prepared as prepared_lib
from tfrec.data import schema
from tfrec.exporting import index as index_lib
from tfrec.models import repeat_prior
from tfrec.ranking import blend as blend_lib
from tfrec.training import workdir as workdir_lib

FORMAT = "tfrec.artifact"
FORMAT_VERSION = 1
MANIFEST = "artifact.json"
DIRNAME = "artifact"

# What a published artifact takes from its run, relative to the run's root. The layout inside
# the artifact is the run's own, so the loaders of towers, ranker, prior and blend read both.
_FILES = (
    "config.yaml",
    "repeat_prior.json",
    "history.json",
    "ranking/heads.json",
    "ranking/blend.json",
    "ranking/history.json",
    "update.json",  # what `tfrec update` did, and ids it retired (rows kept)
)
_DIRS = ("spec", "best", "ranking/best", "baselines/id_two_tower/best")
_DATA = ("interactions", "items", "users")

PathLike = Union[str, "os.PathLike[str]"]


@dataclasses.dataclass
class Trained:
    """A trained model loaded for use: what export and the Python `Recommender` read.

    Args:
        config: Config. The resolved config.
        spec: FeatureSpec. The vocabularies.
        query_model: tf.keras.Model. The query tower.
        candidate_model: tf.keras.Model. The item tower.
        ranker: tf.keras.Model or None. The ranking network.
        catalog: ItemIndex. Every catalog item with its precomputed vector.
        prior: RepeatPrior. The retrieval score's repeat prior.
        blend: Blend. The final score's blend of retrieval and ranker.
    """

    config: config_lib.Config
    spec: features.FeatureSpec
    query_model: tf.keras.Model
    candidate_model: tf.keras.Model
    ranker: Optional[tf.keras.Model]
    catalog: index_lib.ItemIndex
    prior: repeat_prior.RepeatPrior = dataclasses.field(default_factory=repeat_prior.RepeatPrior)
    blend: blend_lib.Blend = dataclasses.field(default_factory=blend_lib.Blend)


def _fingerprint(dataset: schema.Dataset) -> str:
    """sha256 of the cleaned data's content (row order and values), independent of file bytes."""
    digest = hashlib.sha256()
    for name in _DATA:
        frame = getattr(dataset, name)
        digest.update(name.encode())
        digest.update(",".join(frame.columns).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _catalog(dataset: schema.Dataset, train_end: int) -> pd.DataFrame:
    """The item table with each item's first and last event time and its training count."""
    inter = dataset.interactions
    times = inter.groupby("item_id", sort=False)["timestamp"].agg(["min", "max"])
    in_train = inter.loc[inter["timestamp"] < train_end, "item_id"].value_counts()
    catalog = dataset.items.copy()
    catalog["first_seen"] = catalog["item_id"].map(times["min"]).astype("Int64")
    catalog["last_seen"] = catalog["item_id"].map(times["max"]).astype("Int64")
    catalog["train_events"] = catalog["item_id"].map(in_train).fillna(0).astype("int64")
    return catalog


def publish(
    run: PathLike,
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    provenance: Optional[dict[str, Any]] = None,
) -> Path:
    """Writes `<run>/artifact/` from a trained run, replacing any earlier one whole.

    The artifact holds the resolved config, the vocabularies, the towers' and the ranker's best
    weights with the repeat prior and the blend, the cleaned data the model was trained and is
    evaluated on (so no later step reads the source files), the catalog as the model knows it,
    the split boundaries and a fingerprint of the data. It is built in a temporary sibling and
    renamed in, so a reader never sees half of one.

    Args:
        run: path. The run folder.
        config: Config. Its resolved config.
        prepared: PreparedData. The data it trained on.
        provenance: dict or None. Where the model came from when not trained from scratch
            (`tfrec update`: the artifact it warm-started from), under `artifact.json`'s
            `provenance`.

    Returns:
        Path of the artifact.
    """
    run = Path(run)
    final = run / DIRNAME
    tmp = run / f".{DIRNAME}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in _FILES:
        if (run / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / name, tmp / name)
    for name in _DIRS:
        if (run / name).is_dir():
            shutil.copytree(run / name, tmp / name)
    data = tmp / "data"
    data.mkdir()
    ds = prepared.dataset
    for name in _DATA:
        getattr(ds, name).to_parquet(data / f"{name}.parquet", index=False)
    split = prepared.split
    _catalog(ds, split.validation_start).to_parquet(tmp / "catalog.parquet", index=False)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tfrec_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "name": config.name,
        "data": {
            "dataset": ds.name,
            "source": ds.report.source,
            "fingerprint": _fingerprint(ds),
            "interactions": len(ds.interactions),
            "items": len(ds.items),
            "users": len(ds.users),
            "cleaning": ds.report.to_dict(),
        },
        "split": split.report(),
        "has_ranker": (tmp / "ranking" / "best").is_dir(),
    }
    if provenance is not None:
        manifest["provenance"] = provenance
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    old = run / f".{DIRNAME}.old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def resolve(path: PathLike) -> Path:
    """The artifact at `path`: an artifact folder itself, or a run folder holding one.

    Raises:
        errors.WorkdirError: neither holds an artifact.
    """
    path = Path(path)
    for candidate in (path, path / DIRNAME):
        if (candidate / MANIFEST).is_file():
            return candidate
    hint = (
        f"run `tfrec train --workdir {path}` (training publishes `{path / DIRNAME}`)"
        if (path / "config.yaml").is_file() or not path.exists()
        else "pass a run folder of `tfrec train` or the artifact folder inside it"
    )
    raise errors.WorkdirError(
        f"`{path}` holds no model artifact: expected `{path / MANIFEST}` or "
        f"`{path / DIRNAME / MANIFEST}`; {hint}"
    )


class Artifact:
    """A trained model that stands alone, like a KerasHub preset: open it anywhere.

    Every step after training reads one: `tfrec evaluate`, `compress`, `export`, `tfrec.load`.
    Its folder keeps a run's layout for the parts it holds (config.yaml, spec/, best/,
    repeat_prior.json, ranking/), so `Artifact.root` works wherever a run folder is read, plus
    `artifact.json` (provenance, split, data fingerprint), `catalog.parquet` and `data/`.
    Outputs of later steps (metrics.json, compression/) are written inside it.

    Args:
        path: str or Path. An artifact folder, or a run folder holding `artifact/`.

    Example:
        >>> art = Artifact("runs/demo")
        >>> prepared = art.prepared()  # no source file is read
    """

    def __init__(self, path: PathLike):
        self.root = resolve(path)
        self.manifest: dict[str, Any] = json.loads((self.root / MANIFEST).read_text("utf-8"))
        if self.manifest.get("format") != FORMAT:
            raise errors.WorkdirError(
                f"`{self.root / MANIFEST}`: `format` must be {FORMAT!r}, received "
                f"{self.manifest.get('format')!r}"
            )
        version = self.manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise errors.WorkdirError(
                f"`{self.root / MANIFEST}`: `format_version` {version!r} is not readable by "
                f"tfrec {__version__} (expected {FORMAT_VERSION}); export it with the tfrec "
                "that trained it, or train again"
            )
        self.workdir = workdir_lib.Workdir(self.root)
        self.config = self.workdir.load_config()
        self._prepared: Optional[prepared_lib.PreparedData] = None

    def dataset(self) -> schema.Dataset:
        """The cleaned data stored at training time, checked against its fingerprint."""
        frames = {}
        for name in _DATA:
            path = self.root / "data" / f"{name}.parquet"
            if not path.is_file():
                raise errors.WorkdirError(f"artifact `{self.root}` is missing `{path}`")
            frames[name] = pd.read_parquet(path)
        info = self.manifest["data"]
        cleaning = dict(info["cleaning"])
        report = schema.CleaningReport(
            **{k: v for k, v in cleaning.items() if k in schema.CleaningReport.__dataclass_fields__}
        )
        ds = schema.Dataset(
            info["dataset"], frames["interactions"], frames["items"], frames["users"], report
        )
        found = _fingerprint(ds)
        if found != info["fingerprint"]:
            raise errors.WorkdirError(
                f"artifact `{self.root}`: the data under `data/` does not match its fingerprint "
                f"(expected {info['fingerprint'][:12]}..., found {found[:12]}...): it was "
                "changed after training"
            )
        return ds

    def spec(self) -> features.FeatureSpec:
        return features.FeatureSpec.load(self.workdir.spec)

    def prepared(self) -> prepared_lib.PreparedData:
        """Split, vocabularies, catalog table and examples, rebuilt from the stored data."""
        if self._prepared is None:
            self._prepared = prepared_lib.prepare(self.config, self.dataset(), self.spec())
        return self._prepared

    def catalog(self) -> pd.DataFrame:
        """Items as the model knows them: text, category, price, first/last seen, train events."""
        return pd.read_parquet(self.root / "catalog.parquet")

    @property
    def has_ranker(self) -> bool:
        return bool(self.manifest.get("has_ranker"))

    def load_trained(self) -> Trained:
        """The towers, the ranker (None without one), the item index, prior and blend."""
        from tfrec.ranking import training
        from tfrec.training import trainer

        config, prepared = self.config, self.prepared()
        towers = trainer.load_trained(config, self.root, prepared)
        ranker = None
        if training.has_ranker(self.root):
            ranker = training.load_ranker(config, self.root, prepared, towers).network
        return Trained(
            config=config,
            spec=prepared.spec,
            query_model=towers.query_model,
            candidate_model=towers.candidate_model,
            ranker=ranker,
            catalog=index_lib.from_table(towers.candidate_model, prepared.table),
            prior=repeat_prior.RepeatPrior.load(self.workdir.repeat_prior),
            blend=blend_lib.Blend.load(training.blend_path(self.root)),
        )

    def recommender(self):
        """The two-stage `Recommender` of this model (retrieve, rank, rules, explain): the
        ServingModules `tfrec export` saves, with and without the query text, in memory.

        Raises:
            errors.WorkdirError: the artifact holds no ranker.
        """
        from tfrec.exporting import signatures
        from tfrec.ranking import recommender

        trained = self.load_trained()
        if trained.ranker is None:
            raise errors.WorkdirError(
                f"artifact `{self.root}` holds no trained ranker (`ranking/best`), which the "
                "two-stage Recommender needs: train one with `tfrec train` on its run folder"
            )
        item_index = signatures.build_item_index(trained.config, trained.catalog)
        modules = [
            signatures.from_config(
                trained.config,
                trained.spec,
                trained.query_model,
                trained.catalog,
                ranker=trained.ranker,
                prior=trained.prior,
                blend=trained.blend,
                with_text=text,
                item_index=item_index,
            )
            for text in (False, True)
        ]
        return recommender.Recommender(*modules)


def load(path: PathLike):
    """`tfrec.load`: the ready Python `Recommender` of an artifact (or a run holding one).

    Example:
        >>> rec = load("runs/demo")
        >>> rec.recommend("u1", [("i9", "cart")], k=5)
    """
    return Artifact(path).recommender()
