"""The `bench:` config section: defaults, YAML, checks naming the key, overrides, workdirs."""

import pytest

from tests import harness
from tfrec import config as config_lib
from tfrec import errors
from tfrec.pipelines import bench_model
from tfrec.pipelines import bench_serving as bench
from tfrec.serving import loadtest
from tfrec.training import workdir as workdir_lib


def test_defaults_are_the_full_grid_and_within_the_load_generators_bounds():
    defaults = config_lib.Config().bench
    assert defaults.items == (10_000, 100_000, 1_000_000)
    assert (defaults.seconds, defaults.rounds, defaults.concurrency) == (6.0, 3, 4)
    assert (defaults.k, defaults.warmup_requests, defaults.full_grid_max_items) == (10, 20, 10**6)
    assert defaults.request_rows == (1,)  # one user per request unless asked
    # The config refuses what loadtest would refuse mid-run.
    assert config_lib.BenchConfig.MAX_SECONDS == loadtest.MAX_DURATION_S
    assert config_lib.BenchConfig.MAX_CONCURRENCY == loadtest.MAX_CONCURRENCY


def test_yaml_section_loads_and_round_trips(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "bench:\n  items: [1000, 50]\n  seconds: 2\n  concurrency: 8\n  k: 5\n", encoding="utf-8"
    )
    cfg = config_lib.load(str(path))
    assert (cfg.bench.items, cfg.bench.seconds, cfg.bench.concurrency) == ((1000, 50), 2.0, 8)
    assert cfg.bench.k == 5 and cfg.bench.rounds == config_lib.BenchConfig().rounds
    config_lib.save(cfg, tmp_path / "out.yaml")
    assert config_lib.load(str(tmp_path / "out.yaml")) == cfg


def test_tiny_config_is_a_quick_bench():
    tiny = config_lib.load(harness.TINY_CONFIG).bench
    assert max(tiny.items) <= 10_000 and tiny.seconds <= 1.0


@pytest.mark.parametrize(
    "override, message",
    [
        ("bench.items=[]", r"`bench.items` must be a non-empty list of catalog sizes"),
        ("bench.items=[9]", r"each an int >= `bench.k` \(10\), received \[9\]"),
        ("bench.items=[1000, true]", r"`bench.items` must be .* received \[1000, True\]"),
        ("bench.items=1000", r"`bench.items` must be tuple, received 1000"),
        ("bench.seconds=0", r"`bench.seconds` must be in \(0, 300\], received 0.0"),
        ("bench.seconds=301", r"`bench.seconds` must be in \(0, 300\]"),
        ("bench.seconds=abc", r"`bench.seconds` must be float"),
        ("bench.k=0", r"`bench.k` must be in \[1, `serving.max_k` = 1000\], received 0"),
        ("bench.k=1001", r"`bench.k` must be in \[1, `serving.max_k` = 1000\]"),
        ("bench.concurrency=0", r"`bench.concurrency` must be in \[1, 64\], received 0"),
        ("bench.concurrency=65", r"`bench.concurrency` must be in \[1, 64\], received 65"),
        ("bench.rounds=0", r"`bench.rounds` must be >= 1, received 0"),
        ("bench.warmup_requests=-1", r"`bench.warmup_requests` must be >= 0, received -1"),
        ("bench.request_pool=0", r"`bench.request_pool` must be >= 1, received 0"),
        ("bench.full_grid_max_items=-1", r"`bench.full_grid_max_items` must be >= 0"),
        ("bench.request_rows=[]", r"`bench.request_rows` must be a non-empty list of rows"),
        ("bench.request_rows=[1, 0]", r"each an int in \[1, 256\] .* received \[1, 0\]"),
        ("bench.request_rows=[257]", r"`bench.request_rows` must be .* received \[257\]"),
        ("bench.request_rows=[65]", r"<= `bench.request_pool` \(64\), received \[65\]"),
        ("bench.request_rows=[true]", r"`bench.request_rows` must be .* received \[True\]"),
        ("bench.request_rows=[1.5]", r"`bench.request_rows` must be .* received \[1.5\]"),
        ("bench.request_rows=32", r"`bench.request_rows` must be tuple, received 32"),
        ("bench.colour=1", r"unknown config key `bench.colour`"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(errors.ConfigError, match=message):
        config_lib.load(None, [override])


def test_request_rows_from_set_as_on_the_command_line():
    cfg = config_lib.load(None, ["bench.request_rows=[1,32]"])
    assert cfg.bench.request_rows == (1, 32)
    cfg = config_lib.load(None, ["bench.request_pool=300", "bench.request_rows=[256]"])
    assert cfg.bench.request_rows == (256,)


def test_smaller_k_allows_smaller_catalogs():
    cfg = config_lib.load(None, ["bench.k=5", "bench.items=[5]", "bench.warmup_requests=0"])
    assert (cfg.bench.items, cfg.bench.warmup_requests) == ((5,), 0)


def test_flags_override_the_section_and_set_takes_bench_and_index_keys_only():
    assert bench.flag_overrides() == []
    flags = bench.flag_overrides("2000,1_000", "1.5")
    assert flags == ["bench.items=[2000, 1000]", "bench.seconds=1.5"]
    # main() puts the flags after --set: the flag wins over `--set` of the same key.
    cfg = bench_model.bench_config(
        harness.TINY_CONFIG, ["bench.items=[5000]", "bench.concurrency=2", *flags]
    )
    assert (cfg.bench.items, cfg.bench.seconds, cfg.bench.concurrency) == ((2000, 1000), 1.5, 2)
    assert (cfg.name, cfg.train.epochs) == ("tiny", 1)  # the model: tiny, trained briefly
    with pytest.raises(
        errors.ConfigError, match=r"takes `bench.\*` and `index.\*` keys only .*'train.epochs=3'"
    ):
        bench_model.bench_config(harness.TINY_CONFIG, ["train.epochs=3"])
    # The exports' item index is a serving setting: it may change, the model may not.
    cfg = bench_model.bench_config(harness.TINY_CONFIG, ["index.kind=ivf", "index.nprobe=8"])
    assert (cfg.index.kind, cfg.index.nprobe) == ("ivf", 8)


def test_workdir_config_changes_the_bench_section_only(tmp_path):
    run = tmp_path / "run"
    config_lib.save(config_lib.load(harness.TINY_CONFIG), run / "config.yaml")
    cfg = bench_model.workdir_config(run, ["bench.seconds=2"])
    assert (cfg.name, cfg.bench.seconds) == ("tiny", 2.0)
    with pytest.raises(errors.ConfigError, match=r"takes `bench.\*` and `index.\*` keys only"):
        bench_model.workdir_config(run, ["model.embedding_dim=8"])
    with pytest.raises(errors.WorkdirError, match=r"`--workdir` must be a trained run"):
        bench_model.workdir_config(tmp_path / "missing")


def test_bench_settings_do_not_bind_a_trained_workdir(tmp_path):
    # A workdir with a checkpoint refuses another model, but not other bench settings.
    wd = workdir_lib.Workdir(tmp_path / "run")
    wd.claim(config_lib.load(harness.TINY_CONFIG))
    wd.checkpoints.mkdir()
    wd.claim(config_lib.load(harness.TINY_CONFIG, ["bench.seconds=1", "bench.items=[100]"]))
    with pytest.raises(errors.WorkdirError, match="`model.embedding_dim` was 16 there"):
        wd.claim(config_lib.load(harness.TINY_CONFIG, ["model.embedding_dim=8"]))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--items", "9"], "`bench.items` must be a non-empty list of catalog sizes"),
        (["--set", "bench.concurrency=0"], "`bench.concurrency` must be in [1, 64]"),
        (
            ["--set", "train.epochs=3"],
            "`--set` of `tfrec bench serving` takes `bench.*` and `index.*` keys",
        ),
        (["--set", "bench.rounds"], "override must look like `key.sub=value`"),
    ],
)
def test_cli_rejects_bad_settings_before_writing(args, message, capsys, tmp_path):
    from tfrec import cli

    code = cli.main(
        ["bench", "serving", "--config", harness.TINY_CONFIG, "--output", str(tmp_path), *args]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
