"""The `compression:` config section: defaults, range checks naming the key, overrides for one run."""

import pytest

from tests import harness
from tfrec import cli, errors
from tfrec import config as config_lib
from tfrec.pipelines import compress as run_lib
from tfrec.training import workdir as workdir_lib


def test_defaults_are_valid_and_the_demo_states_its_fine_tuning():
    default = config_lib.load(None).compression
    assert default == config_lib.CompressionConfig()
    assert default.sparsities == (0.5, 0.8) and default.fine_tune_steps == 400
    demo = config_lib.load(str(harness.CONFIGS / "demo.yaml")).compression
    assert demo.fine_tune_steps == 200
    # The real-data config measures the targets: it keeps the default fine-tuning.
    retail = config_lib.load(str(harness.CONFIGS / "online_retail.yaml")).compression
    assert retail.fine_tune_steps == 400


@pytest.mark.parametrize(
    "override, message",
    [
        ("compression.sparsities=[]", r"`compression.sparsities` must list at least one"),
        ("compression.sparsities=[0.5, 1.0]", r"`compression.sparsities` .* \(0, 1\).*1\.0"),
        ("compression.sparsities=[0]", r"`compression.sparsities` .* received \[0\]"),
        ("compression.sparsities=[-0.2]", r"`compression.sparsities`"),
        ("compression.fine_tune_steps=1", r"`compression.fine_tune_steps` must be an int >= 2"),
        ("compression.fine_tune_steps=2.5", r"`compression.fine_tune_steps` must be int"),
        ("compression.qat_steps=0", r"`compression.qat_steps` must be an int >= 1, received 0"),
        ("compression.latency_calls=0", r"`compression.latency_calls` must be an int >= 1"),
        ("compression.latency_batch_size=-1", r"`compression.latency_batch_size` must be"),
        ("compression.tower_calibration_examples=0", r"`compression.tower_calibration_"),
        ("compression.ranker_calibration_examples=0", r"`compression.ranker_calibration_"),
        ("compression.int8_size_ratio=1.5", r"`compression.int8_size_ratio` must be in \[0, 1\]"),
        ("compression.max_relative_quality_loss=-0.1", r"`compression.max_relative_quality_"),
        ("compression.sparsity_tolerance=2", r"`compression.sparsity_tolerance` must be in"),
        ("compression.colour=1", r"unknown config key `compression.colour`"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(errors.ConfigError, match=message):
        config_lib.load(None, [override])


def test_bad_value_in_a_yaml_file_names_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("compression:\n  sparsities: [0.5, 1.5]\n", encoding="utf-8")
    with pytest.raises(errors.ConfigError, match=r"`compression.sparsities`.*1\.5"):
        config_lib.load(str(path))


def test_overrides_change_only_the_compression_section():
    trained = config_lib.load(harness.TINY_CONFIG)
    # Keyword settings (the command's flags) are applied after `compression.*` overrides.
    config = run_lib.resolve_config(
        trained,
        ["compression.latency_calls=7", "compression.fine_tune_steps=50"],
        fine_tune_steps=30,
        sparsities=(0.6,),
        qat_steps=None,
    )
    assert config.compression.fine_tune_steps == 30
    assert config.compression.latency_calls == 7
    assert config.compression.sparsities == (0.6,)
    assert config.compression.qat_steps is None
    assert config.compression.latency_batch_size == trained.compression.latency_batch_size
    assert config.model == trained.model and config.train == trained.train
    with pytest.raises(errors.ConfigError, match=r"`train.epochs` cannot change after training"):
        run_lib.resolve_config(trained, ["train.epochs=3"])


def test_cli_flags_override_the_config(monkeypatch, capsys):
    trained = config_lib.load(harness.TINY_CONFIG)
    seen = {}

    def compress_workdir(workdir, *, overrides, prepared=None, **settings):
        seen["config"] = run_lib.resolve_config(trained, overrides, **settings)
        return {"workdir": str(workdir), "targets": []}

    monkeypatch.setattr(run_lib, "compress_workdir", compress_workdir)
    argv = ["compress", "--workdir", "w", "--set", "compression.fine_tune_steps=50"]
    assert cli.main(argv + ["--set", "compression.latency_calls=7"]) == 0
    assert seen["config"].compression.fine_tune_steps == 50
    assert seen["config"].compression.latency_calls == 7
    # Settings no flag names stay the trained config's.
    assert seen["config"].compression.sparsities == trained.compression.sparsities
    assert cli.main(argv + ["--fine-tune-steps", "30", "--sparsity", "0.6"]) == 0
    assert seen["config"].compression.fine_tune_steps == 30
    assert seen["config"].compression.sparsities == (0.6,)
    assert cli.main(argv + ["--batch-size", "8", "--qat-steps", "3"]) == 0
    assert seen["config"].compression.latency_batch_size == 8
    assert seen["config"].compression.qat_steps == 3
    capsys.readouterr()


def test_a_run_resumes_when_only_its_compression_settings_change(tmp_path):
    wd = workdir_lib.Workdir(tmp_path)
    wd.claim(config_lib.load(harness.TINY_CONFIG))
    wd.checkpoints.mkdir()
    changed = config_lib.load(harness.TINY_CONFIG, ["compression.fine_tune_steps=20"])
    wd.claim(changed)
    assert wd.load_config().compression.fine_tune_steps == 20
    with pytest.raises(errors.WorkdirError, match="`train.batch_size`"):
        wd.claim(config_lib.load(harness.TINY_CONFIG, ["train.batch_size=3"]))
