"""Each export loads and runs in a fresh Python that imports neither tfrec nor (core) TF Text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.exporting.conftest import rank_request, request

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    def call(path, requests):
        sigs = tf.saved_model.load(path).signatures
        out = {}
        for name, inputs in requests.items():
            specs = sigs[name].structured_input_signature[1]
            result = sigs[name](**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
            out[name] = {k: np.asarray(v).tolist() for k, v in result.items() if k != "titles"}
        return out

    args = json.loads(sys.stdin.read())
    core = call(args["core"], args["core_requests"])
    leaked = sorted(m for m in sys.modules
                    if m.split(".")[0] in ("tfrec", "tensorflow_text", "keras_nlp", "tf_keras"))
    import tensorflow_text  # noqa: F401  (the text variant needs its ops, nothing else)
    text = call(args["text"], args["text_requests"])
    leaked_text = sorted(m for m in sys.modules if m.split(".")[0] in ("tfrec", "keras_nlp"))
    json.dump({"core": core, "text": text, "leaked": leaked, "leaked_text": leaked_text},
              sys.stdout, default=lambda b: b.decode())
    """
)


def _jsonable(inputs):
    return {k: v.tolist() for k, v in inputs.items()}


def test_exports_run_in_a_process_without_tfrec(run):
    user = run.prepared.spec.users[0]
    item = run.trained.catalog.item_ids[0]
    base = request([user, "nobody"], [[(item, "view")], []], k=4)
    rank = rank_request(base, [[item, "x"], [item, item]])
    core = {"retrieve": _jsonable(base), "recommend": _jsonable(base), "rank": _jsonable(rank)}
    texted = request([user, "nobody"], [[(item, "view")], []], k=4, query_text=["red", ""])
    text = {"retrieve": _jsonable(texted), "recommend": _jsonable(texted)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_USE_LEGACY", "PYTHONPATH"))}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        input=json.dumps(
            {
                "core": run.result["models"]["tfrec"],
                "text": run.result["models"]["tfrec_text"],
                "core_requests": core,
                "text_requests": text,
            }
        ),
        capture_output=True,
        text=True,
        env=env,
        cwd="/",  # so the repository's tfrec is not importable by accident
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["leaked"] == [] and out["leaked_text"] == []
    for name in ("retrieve", "recommend"):
        assert len(out["core"][name]["item_ids"]) == 2
        assert len(out["core"][name]["item_ids"][0]) == 4
        assert len(out["text"][name]["item_ids"][0]) == 4
    assert len(out["core"]["rank"]["scores"][0]) == 2
