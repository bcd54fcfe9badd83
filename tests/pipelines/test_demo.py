"""`make demo` and `make bench` find the shipped configs wherever they run from."""

from tfrec import config as config_lib
from tfrec.pipelines import bench, demo


def test_demo_and_bench_configs_resolve_and_load():
    for name in demo._CONFIGS.values():
        assert (demo.CONFIGS / name).is_file(), name
    config_lib.load(str(demo.CONFIGS / demo._CONFIGS["synthetic"]))
    assert (bench.ROOT / "configs" / "demo.yaml").is_file()
    assert (bench.ROOT / "Makefile").is_file()
