"""Suite-wide set-up: tfrec is imported before any test module imports TensorFlow."""

import dataclasses
import shutil
from pathlib import Path

import pytest

# ruff's import sorting puts `tensorflow` before `tfrec` in test modules; importing tfrec here,
# before any test module, sets TF_USE_LEGACY_KERAS=1 before TensorFlow loads, so tf.keras is
# Keras 2 everywhere.
import tfrec  # noqa: F401

# The CSV column mapping of the files `tfrec.data.synthetic.write` produces.
SYNTHETIC_CSV = [
    "data.dataset=csv",
    "data.csv.interactions=interactions.csv",
    "data.csv.catalog=items.csv",
    "data.csv.event_type=event_type",
    "data.csv.value=value",
    "data.csv.quantity=quantity",
    "data.csv.price=price",
    "data.csv.description=description",
    "data.csv.category=category",
]


@dataclasses.dataclass(frozen=True)
class TinyRun:
    """The suite's one trained model: `configs/tiny.yaml`, shrunk to one epoch per stage.

    Args:
        config: Config. The resolved config it was trained with.
        run: Path. Its run folder (checkpoints, TensorBoard, `artifact/`).
        artifact: Path. Its model artifact. Tests that write into an artifact (evaluate,
            compress) use a copy: `copy_artifact`.
    """

    config: object
    run: Path
    artifact: Path

    def copy_artifact(self, target: Path) -> Path:
        shutil.copytree(self.artifact, target)
        return target


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """Trains the tiny model once per session, from CSV files deleted right after training.

    Everything that uses it therefore reads only the model artifact, never the source data.
    """
    from tests import harness
    from tfrec import config as config_lib
    from tfrec.data import synthetic
    from tfrec.pipelines import train as train_run

    root = tmp_path_factory.mktemp("tiny-run")
    data = root / "data"
    # The data of configs/tiny.yaml's synthetic section, written out as CSV files.
    sizes = config_lib.load(harness.TINY_CONFIG).data.synthetic
    synthetic.write(synthetic.generate(**dataclasses.asdict(sizes)), data)
    overrides = harness.TINY_RUN_OVERRIDES + ["eval.baselines=[most_popular]", *SYNTHETIC_CSV]
    config = config_lib.load(harness.TINY_CONFIG, overrides + [f"data.path={data}"])
    train_run.train_all(config, root / "run", baselines=False)
    shutil.rmtree(data)
    return TinyRun(config, root / "run", root / "run" / "artifact")


@pytest.fixture(scope="session")
def preset(tmp_path_factory):
    """A keras-nlp preset imported from a tiny random checkpoint (2 layers, hidden 32)."""
    from tests.text import tiny_checkpoint
    from tfrec.text import hf_import

    root = tmp_path_factory.mktemp("tiny")
    return hf_import.import_hf(tiny_checkpoint.write(root / "src"), root / "preset")
