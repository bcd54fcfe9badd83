"""The exported signatures declare exactly the request schema's inputs, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.exporting.conftest import request
from tfrec import request_schema
from tfrec.pipelines import export as export_run


def _declared(function) -> dict:
    """Input name -> (dtype name, shape) of a concrete function's input signature."""
    # Loaded signatures take keywords, in-memory functions positional arguments: either way
    # each spec is named by its input.
    specs = tf.nest.flatten(function.structured_input_signature)
    return {spec.name: (spec.dtype.name, spec.shape.as_list()) for spec in specs}


def _schema(signature: str, with_text: bool = False, excluding: bool = False) -> dict:
    return {
        i.name: (i.dtype, [None] * i.rank)
        for i in request_schema.inputs_of(signature, with_text, excluding)
    }


@pytest.mark.parametrize("model,with_text", [("tfrec", False), ("tfrec_text", True)])
def test_served_signatures_declare_the_schema_inputs(run, model, with_text):
    served = tf.saved_model.load(run.result["models"][model]).signatures
    assert set(served) == {*request_schema.SIGNATURES, "serving_default"}
    for name in request_schema.SIGNATURES:
        # `rank` never takes `query_text`: candidates are scored as retrieved.
        text = with_text and name != request_schema.RANK
        assert _declared(served[name]) == _schema(name, text), (model, name)
    assert _declared(served["serving_default"]) == _schema(request_schema.RECOMMEND, with_text)


@pytest.fixture(scope="module")
def module(run):
    return export_run.serving_module(run.trained, run.trained.catalog)


def test_in_memory_recommend_excluding_takes_the_schema_inputs(run, module):
    function = module._excluding.value.get_concrete_function()
    assert _declared(function) == _schema(request_schema.RECOMMEND, excluding=True)
    inputs = request([run.prepared.spec.users[0]], [[]], k=3)
    inputs[request_schema.EXCLUDE_ITEM_IDS.name] = np.array([[""]], object)
    out = module.recommend_excluding(**{k: tf.constant(v) for k, v in inputs.items()})
    assert out["item_ids"].shape == (1, 3)


def test_in_memory_recommend_excluding_names_a_missing_or_mistyped_input(run, module):
    inputs = request([run.prepared.spec.users[0]], [[]], k=3)
    with pytest.raises(
        request_schema.RequestError,
        match=r"missing input `exclude_item_ids` of signature `recommend`",
    ):
        module.recommend_excluding(**inputs)
    inputs[request_schema.EXCLUDE_ITEM_IDS.name] = np.array([[""]], object)
    with pytest.raises(
        request_schema.RequestError,
        match=r"`inputs.k`: expected dtype int32, received int64; `k` \[batch\] int32",
    ):
        module.recommend_excluding(**dict(inputs, k=np.array([3], np.int64)))
