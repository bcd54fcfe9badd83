"""Which models to serve: `models.config` (ModelServerConfig text proto) and version policies."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrec import errors

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One served model: where its versions live and which of them to serve.

    Args:
        name: str. The model name requests use.
        base_path: Path. Folder holding one integer-named folder per version.
        policy: str. `"latest"`, `"all"` or `"specific"`.
        num_versions: int. How many of the newest versions `"latest"` serves. Defaults to 1.
        versions: tuple of int. The versions `"specific"` serves.
        labels: dict of str to int. Version labels, e.g. `{"stable": 1, "canary": 2}`.
    """

    name: str
    base_path: Path
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = dataclasses.field(default_factory=dict)

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve among those found on disk, newest first."""
        available = sorted(available, reverse=True)
        if self.policy == "all":
            return available
        if self.policy == "specific":
            return [v for v in available if v in self.versions]
        return available[: self.num_versions]


def list_versions(base_path: os.PathLike | str) -> list[int]:
    """Complete version folders under `base_path`.

    Writers export to a temporary name and rename it into place, so only integer-named folders
    that already hold a saved_model.pb count; anything else is a write in progress or foreign.
    """
    base = Path(base_path)
    if not base.is_dir():
        return []
    found = []
    for child in base.iterdir():
        if child.name.isdigit() and child.is_dir():
            if any((child / f).is_file() for f in SAVED_MODEL_FILES):
                found.append(int(child.name))
    return sorted(found)


def _spec_from_proto(proto, config_dir: Path, model_base_path: Optional[Path]) -> ModelSpec:
    if not proto.name:
        raise errors.ConfigError("models.config: every `config` needs a `name`, received ''")
    if proto.model_platform not in ("", "tensorflow"):
        raise errors.ConfigError(
            f"models.config: `model_platform` of `{proto.name}` must be 'tensorflow', "
            f"received {proto.model_platform!r}"
        )
    base = Path(proto.base_path) if proto.base_path else None
    if base is not None and not base.is_absolute():
        base = config_dir / base
    # A config written for the container (`/models/<name>`) also works locally: fall back to the
    # folder of the same name under --model-base-path, else beside the config file (where
    # `tfrec export` writes it), when the configured path does not exist.
    if (base is None or not base.exists()) and model_base_path is not None:
        base = model_base_path / proto.name
    if (base is None or not base.exists()) and (config_dir / proto.name).is_dir():
        base = config_dir / proto.name
    if base is None:
        raise errors.ConfigError(f"models.config: `base_path` of `{proto.name}` is empty")
    policy = proto.model_version_policy.WhichOneof("policy_choice") or "latest"
    num = 1
    if policy == "latest":
        num = proto.model_version_policy.latest.num_versions or 1
    versions = tuple(proto.model_version_policy.specific.versions)
    if policy == "specific" and not versions:
        raise errors.ConfigError(
            f"models.config: `model_version_policy.specific.versions` of `{proto.name}` is empty"
        )
    return ModelSpec(
        name=proto.name,
        base_path=base,
        policy=policy,
        num_versions=num,
        versions=versions,
        labels=dict(proto.version_labels),
    )


def parse_models_config(text: str, config_dir: os.PathLike | str = ".", model_base_path=None):
    """Parses a ModelServerConfig text proto into ModelSpecs.

    Args:
        text: str. The file's content (`model_config_list { config { ... } }`).
        config_dir: path. Relative `base_path`s are resolved against it; the last fallback
            parent folder for `base_path`s that do not exist.
        model_base_path: path or None. The first fallback parent folder for `base_path`s that
            are empty or do not exist.

    Returns:
        list of ModelSpec.
    """
    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as e:
        raise errors.ConfigError(f"models.config is not a valid ModelServerConfig: {e}") from e
    if proto.WhichOneof("config") == "custom_model_config":
        raise errors.ConfigError("models.config: expected `model_config_list`, received custom")
    mbp = Path(model_base_path) if model_base_path is not None else None
    specs = [_spec_from_proto(c, Path(config_dir), mbp) for c in proto.model_config_list.config]
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise errors.ConfigError(f"models.config: model `{sorted(dup)[0]}` is configured twice")
    return specs


def discover(model_base_path: os.PathLike | str, config_file=None, model_name=None):
    """The models under `model_base_path`, following `config_file` when given.

    Without a config file, a base path that itself holds version folders is one model (named
    `model_name` or after the folder, as `tensorflow_model_server --model_base_path` does);
    otherwise each sub-folder holding version folders is a model with the latest-1 policy.
    """
    base = Path(model_base_path)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise errors.ConfigError(f"`--model-config-file` {str(path)!r} does not exist")
        return parse_models_config(path.read_text(encoding="utf-8"), path.parent, base)
    if not base.is_dir():
        raise errors.ConfigError(f"`--model-base-path` {str(base)!r} is not a directory")
    if list_versions(base) or model_name:
        return [ModelSpec(name=model_name or base.resolve().name, base_path=base)]
    return [
        ModelSpec(name=child.name, base_path=child)
        for child in sorted(base.iterdir())
        if child.is_dir() and list_versions(child)
    ]
