"""The trainer under tf.distribute (two logical CPUs) and forced mixed precision."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Logical devices must be configured before TensorFlow initializes: a fresh process.
_SCRIPT = """
import json, sys
import tfrec
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tfrec import config
from tfrec.training import trainer
cfg = config.load(sys.argv[2], sys.argv[3:])
summary = trainer.train(cfg, sys.argv[1])
print("RESULT " + json.dumps(summary))
"""


def _train(workdir, *overrides):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT,
            str(workdir),
            str(ROOT / "configs" / "tiny.yaml"),
            "train.epochs=2",
            "train.steps_per_epoch=4",
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


# Slow lane: a fresh TensorFlow process per run. The default suite trains under both mixed
# policies in process (tests/models/test_retrieval.py) and under float16 here.
@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    summary = _train(tmp_path / "run", "train.distribution=mirrored")
    assert summary["replicas"] == 2
    losses = summary["history"]["loss"]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert (tmp_path / "run" / "best").is_dir()


@pytest.mark.parametrize(
    "policy", ["mixed_float16", pytest.param("mixed_bfloat16", marks=pytest.mark.slow)]
)
def test_forced_mixed_precision_trains_on_cpu(tmp_path, policy):
    summary = _train(tmp_path / "run", f"train.precision={policy}", "train.distribution=none")
    assert summary["precision"] == policy
    assert all(math.isfinite(x) for x in summary["history"]["loss"])
