"""`tfrec results`: evaluate the runs, write RESULTS.md, results.json and the README block."""

from __future__ import annotations

import json
import stat

import pytest

from tests import harness
from tfrec import cli, errors
from tfrec.pipelines import results

README = """# Shop

Intro text.

## Results

Written by a command.

<!-- results:begin -->
old table
<!-- results:end -->

Hand-written notes stay.
"""


@pytest.fixture(scope="module")
def evaluated(tiny_run, tmp_path_factory):
    """The suite's tiny model as `<runs>/tiny`, evaluated and rendered once by the pipeline."""
    root = tmp_path_factory.mktemp("results")
    tiny_run.copy_artifact(root / "runs" / "tiny" / "artifact")
    readme = root / "README.md"
    readme.write_text(README, encoding="utf-8")
    readme.chmod(0o644)
    movielens = str(harness.CONFIGS / "movielens.yaml")
    out = results.run_results(
        configs=[harness.TINY_CONFIG, movielens],
        runs=root / "runs",
        output=root / "results",
        readme=readme,
        skip_train=True,
        # An existing path: the run, not the data, is what is missing.
        overrides=[f"movielens:data.path={root}"],
    )
    return root, out


def test_skip_train_evaluates_the_run_and_writes_every_output(evaluated):
    root, out = evaluated
    assert [r["name"] for r in out["runs"]] == ["tiny"]
    run = out["runs"][0]
    assert (root / "runs" / "tiny" / "artifact" / "metrics.json").is_file()
    assert run["metrics"]["models"]["tfrec"]["metrics"]["all"]["recall@10"] >= 0
    fingerprint = run["artifact"]["data"]["fingerprint"]
    markdown = (root / "results" / "RESULTS.md").read_text()
    assert markdown.startswith("# Results\n") and "## tiny\n" in markdown
    assert f"fingerprint `{fingerprint[:12]}`" in markdown
    assert "| tfrec, retrieval (towers + repeat prior) |" in markdown
    assert "| most popular |" in markdown
    stored = json.loads((root / "results" / "results.json").read_text())
    assert stored["runs"][0]["metrics"]["models"] == run["metrics"]["models"]
    assert stored["skipped"] == out["skipped"]


def test_a_config_without_its_trained_run_is_skipped_with_the_reason(evaluated):
    root, out = evaluated
    assert out["skipped"] == [
        {
            "config": str(harness.CONFIGS / "movielens.yaml"),
            "reason": f"no trained model in `{root / 'runs' / 'movielens'}` "
            "(train it: run without --skip-train)",
        }
    ]
    assert "movielens.yaml`: no trained model" in (root / "results" / "RESULTS.md").read_text()


def test_the_readme_block_is_replaced_and_the_rest_kept(evaluated):
    root, out = evaluated
    text = (root / "README.md").read_text()
    before, _, rest = text.partition(results.BEGIN + "\n")
    block, _, after = rest.partition(results.END)
    assert before == README.split(results.BEGIN)[0]
    assert after == README.split(results.END)[1]
    assert "old table" not in block and block.strip() == out["markdown"].strip()
    assert "### tiny\n" in block
    assert stat.S_IMODE((root / "README.md").stat().st_mode) == 0o644


@pytest.mark.parametrize("skip_train", [False, True])
def test_missing_data_skips_the_config_before_training(tmp_path, capsys, skip_train):
    missing = tmp_path / "no-such-folder"
    out = results.run_results(
        configs=[str(harness.CONFIGS / "movielens.yaml")],
        runs=tmp_path / "runs",
        output=tmp_path / "results",
        overrides=[f"movielens:data.path={missing}"],
        skip_train=skip_train,
    )
    reason = f"data file `{missing}` (`data.path`) not found"
    assert out["runs"] == [] and out["skipped"][0]["reason"].startswith(reason)
    assert reason in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_an_override_scoped_to_an_unknown_config_is_an_error(tmp_path):
    with pytest.raises(errors.ConfigError, match="`netflix:data.path=x`|'netflix:data.path=x'"):
        results.run_results(
            configs=[harness.TINY_CONFIG], output=tmp_path, overrides=["netflix:data.path=x"]
        )


def test_scoped_overrides_reach_only_their_config():
    overrides = ["train.epochs=1", "movielens:data.path=/data/ml-1m"]
    assert results.split_overrides(overrides, "configs/movielens.yaml") == [
        "train.epochs=1",
        "data.path=/data/ml-1m",
    ]
    assert results.split_overrides(overrides, "configs/demo.yaml") == ["train.epochs=1"]


def test_replace_block_is_idempotent_and_keeps_the_text_outside():
    once = results.replace_block(README, "| new |", "README.md")
    assert results.replace_block(once, "| new |", "README.md") == once
    assert once.startswith(README.split(results.BEGIN)[0]) and "old table" not in once
    assert once.endswith(results.END + "\n\nHand-written notes stay.\n")
    assert f"{results.BEGIN}\n\n| new |\n\n{results.END}" in once


@pytest.mark.parametrize(
    "text, message",
    [
        ("# no markers\n", f"`docs/README.md` has no `{results.BEGIN}` line"),
        (f"{results.BEGIN}\n", f"`docs/README.md` has no `{results.END}` line"),
        (f"{results.END}\n{results.BEGIN}\n", "comes before"),
        (f"{results.BEGIN}\n{results.BEGIN}\n{results.END}\n", "has 2 lines"),
    ],
)
def test_replace_block_refuses_missing_or_misplaced_markers(text, message):
    with pytest.raises(errors.ConfigError) as e:
        results.replace_block(text, "x", "docs/README.md")
    assert message in str(e.value)


def test_cli_renders_stored_metrics_into_a_readme(evaluated, tmp_path, capsys):
    root, _ = evaluated
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    argv = ["results", "--config", harness.TINY_CONFIG, "--runs", str(root / "runs")]
    argv += ["--output", str(tmp_path / "out"), "--readme", str(readme), "--skip-evaluate"]
    assert cli.main(argv) == 0
    assert "### tiny\n" in readme.read_text()
    assert "Hand-written notes stay." in readme.read_text()
    capsys.readouterr()
    readme.write_text("# no markers\n", encoding="utf-8")
    assert cli.main(argv) == 2
    assert f"`{readme}` has no `{results.BEGIN}` line" in capsys.readouterr().err
