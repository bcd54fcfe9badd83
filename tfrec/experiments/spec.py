"""The experiment file: dataset, seeds, reference and variants as overrides of one base config.

Every mistake a file can hold (an unknown key, an override of a config field that does not
exist or of the wrong type, a data path that is not there) is reported with the file and line
before anything trains, so a ten-line edit fails in a second rather than after an hour.
(Just over 400 lines: the schema and its line-numbered checks are one concept, tested together.)
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any, Optional

import yaml

from tfrec import config as config_lib
from tfrec import errors

# Top-level keys, and the keys of one variant (the rest of a variant is its config overrides).

_TOP = (
    "name",
    "base",
    "dataset",
    "seeds",
    "set",
    "baselines",
    "metrics",
    "reference",
    "variants",
    "examples",
    "output",
    "description",
)
_VARIANT = ("description", "set", "ranker")
_DATASET = ("name", "path", "split")
_EXAMPLES = ("users", "k")
_METRIC = re.compile(r"^(recall|ndcg|hit_rate)@([0-9]+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MIN_SEEDS = 3  # a mean's t-interval over fewer seeds is too wide to decide anything
MAX_K = 100  # recall@k curves run k = 1..MAX_K
DEFAULT_METRICS = ("recall@10", "recall@50", "ndcg@10", "mrr")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of the experiment.

    Args:
        name: str. Folder-safe name, shown in the report.
        config: Config. The base config with the experiment's and the variant's overrides.
        overrides: dict. Dotted config key -> value, the experiment's `set` then the variant's.
        ranker: bool. Whether the two-stage pipeline (retrieve then rank) is the one measured;
            False measures retrieval alone (the `retrieve` signature when timed).
        description: str. One line for the report.
    """

    name: str
    config: config_lib.Config
    overrides: dict
    ranker: bool = True
    description: str = ""

    @property
    def model(self) -> str:
        """The evaluated pipeline this variant is judged by (a key of `metrics.json`)."""
        return "tfrec_two_stage" if self.ranker else "tfrec"


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A parsed, checked experiment file.

    Args:
        path: Path. The experiment file.
        name: str. Experiment name.
        base: Path. The base config file.
        seeds: tuple of int. Each variant trains once per seed (`train.seed`).
        reference: str. The variant the others are compared with.
        variants: dict name -> Variant, in file order (the reference included).
        metrics: tuple of str. Compared metrics; the first is the primary one.
        baselines: tuple of str. Baselines evaluated beside the variants.
        examples_users: int. Users shown in the example lists.
        examples_k: int. Items per example list.
        output: Path. Folder of the runs and the report.
        description: str.
    """

    path: Path
    name: str
    base: Path
    seeds: tuple
    reference: str
    variants: dict
    metrics: tuple = DEFAULT_METRICS
    baselines: tuple = ("most_popular",)
    examples_users: int = 3
    examples_k: int = 5
    output: Path = Path("runs/experiments")
    description: str = ""

    def owner(self, variant: str) -> str:
        """The first variant (in file order) with this variant's config: they share runs.

        A variant that differs only in what is measured (`ranker: false`) trains nothing new.
        """
        config = self.variants[variant].config
        return next(n for n, v in self.variants.items() if v.config == config)

    def run_dir(self, variant: str, seed: int) -> Path:
        """The workdir of one variant and seed: `<output>/<owner variant>/seed-<seed>`."""
        return self.output / self.owner(variant) / f"seed-{seed}"

    @property
    def primary(self) -> str:
        return self.metrics[0]


class _Lines:
    """Line numbers (1-based) of every key of a YAML document, by key path."""

    def __init__(self, node: Optional[yaml.Node]) -> None:
        self.lines: dict[tuple, int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, key.value)
                self.lines[sub] = key.start_mark.line + 1
                self._walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                self._walk(value, (*path, i))

    def of(self, *path: Any) -> int:
        """The line of `path`, or of its nearest ancestor in the file."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


class _Reader:
    """Raises `ConfigError`s that name the file, the line and the key."""

    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path, self.lines = path, lines

    def error(self, where: tuple, message: str) -> errors.ConfigError:
        key = ".".join(str(p) for p in where)
        at = f" `{key}`" if key else ""
        return errors.ConfigError(f"{self.path}:{self.lines.of(*where)}:{at} {message}")

    def mapping(self, value: Any, where: tuple, allowed: tuple) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(where, f"must be a mapping, received {value!r}")
        for key in value:
            if key not in allowed:
                raise self.error((*where, key), f"unknown key; expected one of {sorted(allowed)}")
        return value


def _field_type(dotted: str) -> Optional[str]:
    """Why `dotted` names no field of `Config`, or None when it does."""
    cls: Any = config_lib.Config
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            return f"`{'.'.join(parts[:i])}` is not a section"
        names = {f.name for f in dataclasses.fields(cls)}
        if part not in names:
            prefix = ".".join(parts[:i])
            return f"no config field `{part}` in `{prefix or 'the config'}`; expected one of {sorted(names)}"
        hint = typing.get_type_hints(cls)[part]
        if hint is dict:
            return None  # free-form mappings (e.g. eval.baseline_grids) take any key below
        cls = hint
    return None


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _flat_overrides(reader: _Reader, value: Any, where: tuple) -> dict:
    """A `set:` block: `dotted.key: value` pairs, each naming an existing config field."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise reader.error(where, f"must map dotted config keys to values, received {value!r}")
    out = {}
    for key, v in value.items():
        if not isinstance(key, str):
            raise reader.error(
                (*where, key), "must be a dotted config key such as model.embedding_dim"
            )
        if key in ("name", "base"):
            raise reader.error((*where, key), "is set by the experiment, not by a variant")
        problem = _field_type(key)
        if problem is not None:
            raise reader.error((*where, key), problem)
        out[key] = v
    return out


def _build_config(
    reader: _Reader, base: dict, overrides: dict, where_of: dict, where: tuple
) -> config_lib.Config:
    """The base config with `overrides`; a type or value error names the override's line.

    Args:
        where_of: dict. Override key -> key path in the file, for error lines.
        where: tuple. Key path blamed when no single override is named by the error.
    """
    data = yaml.safe_load(yaml.safe_dump(base))  # a deep copy of plain data
    for key, value in overrides.items():
        _set_dotted(data, key, value)
    try:
        config = config_lib.from_dict(config_lib.Config, data)
        config_lib.check(config)
    except errors.ConfigError as e:
        named = [k for k in overrides if f"`{k}" in str(e) and k in where_of]
        raise reader.error(where_of[named[0]] if named else where, str(e)) from e
    return config


def _dataset_overrides(reader: _Reader, value: Any) -> tuple[dict, dict]:
    """The `dataset:` block as config overrides, and each one's key path in the file."""
    block = reader.mapping(value, ("dataset",), _DATASET)
    out: dict[str, Any] = {}
    where: dict[str, tuple] = {}
    if "name" in block:
        out["data.dataset"], where["data.dataset"] = block["name"], ("dataset", "name")
    if "path" in block:
        if not isinstance(block["path"], str) or not block["path"]:
            raise reader.error(
                ("dataset", "path"), f"must be a file or folder, received {block['path']!r}"
            )
        # Absolute, so every run's process reads the same data wherever it starts.
        out["data.path"], where["data.path"] = (
            str(Path(block["path"]).resolve()),
            ("dataset", "path"),
        )
    split = reader.mapping(
        block.get("split"), ("dataset", "split"), ("validation_start", "test_start")
    )
    for key, v in split.items():
        out[f"data.split.{key}"] = v
        where[f"data.split.{key}"] = ("dataset", "split", key)
    return out, where


def load(path: str | Path, output: Optional[str | Path] = None) -> Experiment:
    """Reads and checks an experiment file; nothing is trained or written.

    Args:
        path: str or Path. The experiment YAML file.
        output: str, Path or None. Folder of the runs and report; None: the file's `output`
            key, else `runs/experiments/<name>`.

    Raises:
        errors.ConfigError: naming the file and line of the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise errors.ConfigError(f"experiment file `{path}` does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise errors.ConfigError(f"experiment file `{path}` is not valid YAML: {e}") from e
    r = _Reader(path, _Lines(node))
    top = r.mapping(raw, (), _TOP)
    required = ("name", "base", "seeds", "reference", "variants")
    for key in required:
        if key not in top:
            raise r.error((), f"missing key `{key}`; an experiment needs {list(required)}")
    name = top["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise r.error(
            ("name",), f"must be a folder-safe name (letters, digits, _ . -), received {name!r}"
        )
    base_path = path.parent / str(top["base"])
    if not base_path.is_file():
        raise r.error(
            ("base",),
            f"base config `{base_path}` does not exist (paths are relative to the experiment file)",
        )
    try:
        base = config_lib.to_dict(config_lib.load(str(base_path)))
    except errors.ConfigError as e:
        raise r.error(("base",), f"base config `{base_path}`: {e}") from e

    seeds = top["seeds"]
    if (
        not isinstance(seeds, list)
        or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
        or len(set(seeds)) != len(seeds)
        or len(seeds) < MIN_SEEDS
    ):
        raise r.error(
            ("seeds",), f"must list at least {MIN_SEEDS} distinct int seeds, received {seeds!r}"
        )

    common, where_of = _dataset_overrides(r, top.get("dataset"))
    shared = _flat_overrides(r, top.get("set"), ("set",))
    common.update(shared)
    where_of.update({k: ("set", k) for k in shared})

    metrics = tuple(top.get("metrics") or DEFAULT_METRICS)
    for i, m in enumerate(metrics):
        match = _METRIC.match(str(m))
        if not (m == "mrr" or (match and 1 <= int(match.group(2)) <= MAX_K)):
            raise r.error(
                ("metrics", i),
                f"must be `mrr` or recall|ndcg|hit_rate@k with k in [1, {MAX_K}], received {m!r}",
            )
    baselines = tuple(top.get("baselines") or ())
    known = (*_baseline_names(), "id_two_tower")
    for i, b in enumerate(baselines):
        if b not in known:
            raise r.error(
                ("baselines", i), f"unknown baseline {b!r}; expected one of {list(known)}"
            )
    common["eval.baselines"] = list(baselines)
    where_of["eval.baselines"] = ("baselines",)

    raw_variants = top["variants"]
    if not isinstance(raw_variants, dict) or not raw_variants:
        raise r.error(("variants",), "must map variant names to their overrides")
    variants: dict[str, Variant] = {}
    for vname, body in raw_variants.items():
        where = ("variants", vname)
        if not isinstance(vname, str) or not _NAME.match(vname):
            raise r.error(where, "a variant name must be folder-safe (letters, digits, _ . -)")
        body = r.mapping(body, where, _VARIANT)
        own = _flat_overrides(r, body.get("set"), (*where, "set"))
        ranker = body.get("ranker", True)
        if not isinstance(ranker, bool):
            raise r.error((*where, "ranker"), f"must be true or false, received {ranker!r}")
        # One name for every variant: variants whose configs are then equal share their runs.
        overrides = {**common, **own, "name": name}
        lines = {**where_of, **{k: (*where, "set", k) for k in own}}
        config = _build_config(r, base, overrides, lines, where)
        if config.data.path and not Path(config.data.path).exists():
            raise r.error(
                lines.get("data.path", ("base",)),
                f"data path `{config.data.path}` (`data.path` of variant `{vname}`) does not exist",
            )
        variants[vname] = Variant(
            vname, config, overrides, ranker, str(body.get("description", ""))
        )
    reference = top["reference"]
    if reference not in variants:
        raise r.error(
            ("reference",),
            f"must name one of the variants {list(variants)}, received {reference!r}",
        )

    ex = r.mapping(top.get("examples"), ("examples",), _EXAMPLES)
    for key, default in (("users", 3), ("k", 5)):
        value = ex.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 50:
            raise r.error(("examples", key), f"must be an int in [1, 50], received {value!r}")
    if output is None:
        output = top.get("output") or Path("runs/experiments") / name
    return Experiment(
        path=path,
        name=name,
        base=base_path,
        seeds=tuple(seeds),
        reference=reference,
        variants=variants,
        metrics=metrics,
        baselines=baselines,
        examples_users=int(ex.get("users", 3)),
        examples_k=int(ex.get("k", 5)),
        output=Path(output),
        description=str(top.get("description", "")),
    )


def _baseline_names() -> tuple:
    # Imported here: the baselines pull in their fitting libraries, needed only to list names.
    from tfrec.evaluation.baselines import tuning

    return tuple(tuning.NAMES)


def config_diff(config: config_lib.Config, reference: config_lib.Config) -> dict[str, tuple]:
    """Dotted key -> (reference value, this value) for every field that differs, in order."""

    def flat(d: dict, prefix: str = "") -> dict:
        out: dict = {}
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    mine, theirs = flat(config_lib.to_dict(config)), flat(config_lib.to_dict(reference))
    return {
        k: (theirs.get(k), mine.get(k))
        for k in list(theirs) + [k for k in mine if k not in theirs]
        if k != "name" and theirs.get(k) != mine.get(k)
    }
