"""The feature spec round-trips through its folder exactly, empty vocabularies included."""

from tfrec import features


def test_spec_round_trip_keeps_empty_and_full_vocabularies(tmp_path):
    spec = features.FeatureSpec(
        max_history=3,
        text_length=4,
        query_text_length=2,
        event_types=("view", "purchase"),
        users=["u1", "u 2"],
        items=["a", "b", "c"],
        categories=[],  # a catalog without categories (UCI Online Retail)
        wordpiece=["[PAD]", "[UNK]", "x"],
        price_mean=1.5,
        price_std=0.5,
    )
    spec.save(tmp_path)
    assert features.FeatureSpec.load(tmp_path) == spec
    # Folders written when an empty list was saved as a single line break load as empty.
    (tmp_path / "categories.txt").write_text("\n")
    assert features.FeatureSpec.load(tmp_path).categories == []
