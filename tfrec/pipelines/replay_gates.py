"""Each replayed month's release: gate the updated model, and export and promote it if it passes.

The loop `tfrec replay` runs is the one a shop would run each month: `tfrec gate data` on the
window the update trained on, `tfrec gate quality` of the updated model (the candidate)
against the serving champion on held-out days neither trained on; only when both pass,
`tfrec export` of the candidate (labelled `canary`) and `tfrec promote` (`stable` -> it). A
candidate that fails is never exported: `canary` takes live traffic. The champion the replay
serves next is whatever `stable` names in the export folder's `labels.json`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from tfrec import artifact as artifact_lib
from tfrec.exporting import labels
from tfrec.pipelines import data_gate, promote, quality_gate
from tfrec.pipelines import export as export_run

MODEL = "tfrec"


def _verdict(verdict: dict[str, Any]) -> dict[str, Any]:
    """What the replay records of a gate's verdict: pass or fail, why, and where it is."""
    return {"passed": bool(verdict["passed"]), "reasons": list(verdict["reasons"])}


class Release:
    """The served champion of a replay and the export folder holding its versions.

    The base model is exported as version 1 (`stable` and `canary`); a month's candidate that
    passes its gates becomes the next version, `canary` and then `stable`.

    Args:
        base: path. The artifact served first.
        export_dir: path. A new export folder (TF Serving layout, `labels.json`).
    """

    def __init__(self, base: os.PathLike | str, export_dir: os.PathLike | str):
        self.export_dir = Path(export_dir)
        self.versions: dict[int, Path] = {}
        t0 = time.perf_counter()
        self._export(base, "replay: the base model")
        self.export_seconds = time.perf_counter() - t0

    def _export(self, art: os.PathLike | str, why: str) -> int:
        root = artifact_lib.Artifact(art).root
        written = export_run.export(root, self.export_dir, with_text=False, why=why)
        version = int(written["version"])
        self.versions[version] = root
        return version

    @property
    def stable(self) -> int:
        """The version `stable` names in the export folder's `labels.json`."""
        return labels.load(self.export_dir).labels(MODEL)[labels.STABLE]

    @property
    def champion(self) -> Path:
        """The artifact of the `stable` version: what the replay serves."""
        return self.versions[self.stable]

    def decide(
        self,
        candidate: os.PathLike | str,
        source: os.PathLike | str,
        window: tuple[Path, Optional[Path]],
        held_out: tuple[Path, Optional[Path]],
        folder: os.PathLike | str,
        overrides: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Gates `candidate`; exports it as the canary and promotes it when both gates pass.

        Args:
            candidate: path. The updated model.
            source: path. The model it was updated from: the data gate compares the window
                with that model's training window, as before an update.
            window: (events, items) paths. The events the update trained on.
            held_out: (events, items) paths. Later events neither the candidate nor the
                champion has seen: the quality gate's window.
            folder: path. Where the verdicts are written (`data-gate.json`,
                `quality-gate.json`).
            overrides: `gates.*=value` settings for both gates.

        Returns:
            dict: `passed`, `data` and `quality` (each `passed`, `reasons`, `path`), the
            candidate's export `version` (None when it failed), `champion_before` and `stable`
            (versions), `promoted`, and `seconds` of gating and of exporting + promoting.
        """
        out = Path(folder)
        champion_before = self.stable
        t0 = time.perf_counter()
        data = data_gate.run(
            source, window[0], window[1], out=out / "data-gate.json", overrides=overrides
        )
        quality = quality_gate.run(
            candidate,
            self.champion,
            held_out[0],
            held_out[1],
            out=out / "quality-gate.json",
            overrides=overrides,
        )
        gate_seconds = time.perf_counter() - t0
        passed = bool(data["passed"] and quality["passed"])
        t0 = time.perf_counter()
        version = None
        if passed:
            version = self._export(candidate, "replay: the month's updated model, gates passed")
            promote.promote(
                self.export_dir, [MODEL], version, why="replay: data and quality gates passed"
            )
        return {
            "passed": passed,
            "data": {**_verdict(data), "path": data["path"]},
            "quality": {**_verdict(quality), "path": quality["path"]},
            "candidate": str(artifact_lib.Artifact(candidate).root),
            "version": version,
            "champion_before": champion_before,
            "stable": self.stable,
            "promoted": self.stable == version,
            "seconds": {"gates": gate_seconds, "export_and_promote": time.perf_counter() - t0},
        }

    def summary(self) -> dict[str, Optional[Any]]:
        """The export folder, each version's artifact, and `stable` now."""
        return {
            "export_dir": str(self.export_dir),
            "versions": {str(v): str(p) for v, p in sorted(self.versions.items())},
            "stable": self.stable,
        }
