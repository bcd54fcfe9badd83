"""`tfrec results`: train and evaluate every shipped config, then write its results tables.

One command regenerates the README's results block, `results/RESULTS.md` and the raw numbers
(`results/results.json`) from the runs themselves, so a published figure always comes with
its dates, data fingerprint and intervals.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import errors
from tfrec.evaluation import results_table
from tfrec.pipelines import evaluate as evaluate_run
from tfrec.pipelines import train as train_run

# The configs with a results section. MovieLens is not shipped: without its files it is
# skipped with the reason printed.
DEFAULT_CONFIGS = (
    "configs/demo.yaml",
    "configs/online_retail.yaml",
    "configs/amazon_instruments.yaml",
    "configs/movielens.yaml",
)
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
SCOPE_SEPARATOR = ":"


def split_overrides(overrides: Sequence[str], config_path: str) -> list[str]:
    """The overrides that apply to one config: unscoped ones, and `<stem>:key=value` ones.

    `<stem>` is the config file's name without `.yaml` (`movielens` for
    `configs/movielens.yaml`), so one command can give one config its data path.
    """
    stem = Path(config_path).stem
    out = []
    for text in overrides:
        key = text.split("=", 1)[0]
        if SCOPE_SEPARATOR not in key:
            out.append(text)
        elif key.split(SCOPE_SEPARATOR, 1)[0] == stem:
            out.append(text.split(SCOPE_SEPARATOR, 1)[1])
    return out


def _check_scopes(overrides: Sequence[str], configs: Sequence[str]) -> None:
    stems = {Path(c).stem for c in configs}
    for text in overrides:
        key = text.split("=", 1)[0]
        if SCOPE_SEPARATOR in key and key.split(SCOPE_SEPARATOR, 1)[0] not in stems:
            raise errors.ConfigError(
                f"override {text!r}: the part before `{SCOPE_SEPARATOR}` must name one of the "
                f"configs {sorted(stems)} (its file name without .yaml)"
            )


def missing_data(config: config_lib.Config, config_path: str) -> Optional[str]:
    """Why `config`'s source data cannot be read, or None when it can (synthetic data always)."""
    data = config.data
    hint = f"give it with `--set {Path(config_path).stem}:data.path=PATH`"
    if data.dataset == "synthetic":
        return None
    if not data.path:
        return f"`data.path` is not set for dataset `{data.dataset}`; {hint}"
    if not Path(data.path).exists():
        return f"data file `{data.path}` (`data.path`) not found; {hint}"
    return None


def collect(name: str, config_path: str, workdir: os.PathLike | str) -> dict[str, Any]:
    """A run's numbers as `results_table.render_run` reads them.

    The evaluation time is `metrics.json`'s modification time: `tfrec evaluate` writes the
    file once, atomically, when it has finished.
    """
    root = artifact_lib.resolve(workdir)
    metrics_path = root / "metrics.json"
    if not metrics_path.is_file():
        raise errors.WorkdirError(
            f"`{metrics_path}` does not exist: run `tfrec evaluate --workdir {workdir}` first"
        )
    evaluated = datetime.datetime.fromtimestamp(metrics_path.stat().st_mtime, tz=datetime.UTC)
    return {
        "name": name,
        "config": str(config_path),
        "workdir": str(workdir),
        "evaluated": evaluated.isoformat(timespec="seconds"),
        "artifact": json.loads((root / artifact_lib.MANIFEST).read_text("utf-8")),
        "metrics": json.loads(metrics_path.read_text("utf-8")),
    }


def replace_block(text: str, block: str, source: os.PathLike | str) -> str:
    """`text` with everything between the `BEGIN` and `END` marker lines replaced by `block`.

    Raises:
        errors.ConfigError: `source` lacks a marker, holds one twice, or has them out of order.
    """
    lines = text.splitlines(keepends=True)
    where = {}
    for marker in (BEGIN, END):
        found = [i for i, line in enumerate(lines) if line.strip() == marker]
        if len(found) != 1:
            state = "has no" if not found else f"has {len(found)} lines"
            raise errors.ConfigError(
                f"`{source}` {state} `{marker}` line: it needs one `{BEGIN}` line and one "
                f"`{END}` line after it around the generated results"
            )
        where[marker] = found[0]
    if where[BEGIN] > where[END]:
        raise errors.ConfigError(f"`{source}`: `{END}` comes before `{BEGIN}`; swap them")
    # Blank lines around the block keep it apart from the markers in any Markdown renderer.
    body = "\n" + block.strip("\n") + "\n\n"
    return "".join(lines[: where[BEGIN] + 1]) + body + "".join(lines[where[END] :])


def write_readme(path: os.PathLike | str, block: str) -> None:
    """Replaces the results block of the Markdown file at `path` (atomically)."""
    path = Path(path)
    if not path.is_file():
        raise errors.ConfigError(f"`--readme` file `{path}` does not exist")
    text = path.read_text(encoding="utf-8")
    mode = stat.S_IMODE(path.stat().st_mode)
    config_lib.write_text_atomic(path, replace_block(text, block, path))
    # The atomic write's temporary file is private (0600); the README keeps its own mode.
    path.chmod(mode)


def run_results(
    configs: Sequence[str] = DEFAULT_CONFIGS,
    runs: os.PathLike | str = "runs",
    output: os.PathLike | str = "results",
    readme: Optional[os.PathLike | str] = None,
    skip_train: bool = False,
    skip_evaluate: bool = False,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Trains (resuming), evaluates and renders each config's run in `<runs>/<config name>`.

    A config whose source data is missing (or, with `skip_train`, whose run holds no model;
    with `skip_evaluate`, no `metrics.json`) is skipped with its reason printed and listed
    under the tables; missing data is the reason given whenever it applies. Writes
    `<output>/RESULTS.md` and `<output>/results.json`, and the block between the markers of
    `readme` when given.

    Args:
        configs: list of str. Config files, in the order of their sections.
        runs: str or path-like. Folder of the run folders. Defaults to "runs".
        output: str or path-like. Folder for RESULTS.md and results.json. Defaults to "results".
        readme: str, path-like or None. A Markdown file with `BEGIN`/`END` marker lines.
        skip_train: bool. Evaluate the runs as they are. Defaults to False.
        skip_evaluate: bool. Render the `metrics.json` already in each run; nothing is
            trained either. Defaults to False.
        overrides: list of str. `key=value` for every config, `<stem>:key=value` for one
            (e.g. `movielens:data.path=data/ml-1m`); `eval.*` keys also reach the evaluation.

    Returns:
        dict. `runs` (as `collect` returns them), `skipped` (`config`, `reason`) and `markdown`.
    """
    _check_scopes(overrides, configs)
    # Stored metrics belong to the stored model: training now would leave them stale.
    skip_train = skip_train or skip_evaluate
    measured: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for path in configs:
        scoped = split_overrides(overrides, path)
        config = config_lib.load(path, scoped)
        workdir = Path(runs) / config.name
        reason = _why_skipped(config, path, workdir, skip_train, skip_evaluate)
        if reason is not None:
            print(f"results: skipping `{path}`: {reason}")
            skipped.append({"config": str(path), "reason": reason})
            continue
        if not skip_train:
            print(f"results: training `{path}` in `{workdir}` (resumed where it stopped)")
            train_run.train_all(config, workdir)
        if not skip_evaluate:
            print(f"results: evaluating `{workdir}`")
            evaluate_run.evaluate_workdir(
                workdir, overrides=[o for o in scoped if o.startswith("eval.")]
            )
        measured.append(collect(config.name, path, workdir))
    markdown = results_table.render(measured, skipped)
    out = Path(output)
    written = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    config_lib.write_text_atomic(
        out / "RESULTS.md",
        f"# Results\n\nWritten by `tfrec results` (`make results`) on {written[:10]} from each "
        "run's `metrics.json` and `artifact.json`; the raw numbers are in `results.json`.\n\n"
        + results_table.render(measured, skipped, level=2),
    )
    config_lib.write_text_atomic(
        out / "results.json",
        json.dumps({"written": written, "runs": measured, "skipped": skipped}, indent=2) + "\n",
    )
    print(f"results: wrote {out / 'RESULTS.md'} and {out / 'results.json'}")
    if readme is not None:
        write_readme(readme, markdown)
        print(f"results: replaced the results block of {readme}")
    return {"runs": measured, "skipped": skipped, "markdown": markdown}


def _why_skipped(
    config: config_lib.Config,
    config_path: str,
    workdir: Path,
    skip_train: bool,
    skip_evaluate: bool,
) -> Optional[str]:
    if not skip_train:
        return missing_data(config, config_path)
    try:
        root = artifact_lib.resolve(workdir)
    except errors.WorkdirError:
        # Training cannot help without the data: that is the reason to give.
        return missing_data(config, config_path) or (
            f"no trained model in `{workdir}` (train it: run without --skip-train)"
        )
    if skip_evaluate and not (root / "metrics.json").is_file():
        return f"no `{root / 'metrics.json'}` (evaluate it: run without --skip-evaluate)"
    return None
