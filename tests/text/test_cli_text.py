"""`tfrec text ...`: help, import-hf end to end, errors with exit code 2."""

import keras_nlp
import pytest

from tests.text import tiny_checkpoint
from tfrec import cli


@pytest.mark.parametrize("command", [["text"], ["text", "fetch-default"], ["text", "import-hf"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*command, "--help"])
    assert e.value.code == 0
    assert "usage: tfrec text" in capsys.readouterr().out


def test_import_hf_writes_a_loadable_preset(tmp_path, capsys):
    src = tiny_checkpoint.write(tmp_path / "src")
    out = tmp_path / "preset"
    assert cli.main(["text", "import-hf", str(src), "--out", str(out), "--licence", "MIT"]) == 0
    assert f"wrote preset {out}" in capsys.readouterr().out
    assert keras_nlp.models.BertBackbone.from_preset(str(out)).hidden_dim == 32
    # A second run refuses to replace it: message on stderr, exit code 2.
    assert cli.main(["text", "import-hf", str(src), "--out", str(out)]) == 2
    assert "`out` must not exist" in capsys.readouterr().err


def test_import_hf_bad_checkpoint_exits_2(tmp_path, capsys):
    src = tiny_checkpoint.write(tmp_path / "src", config_overrides={"hidden_act": "relu"})
    assert cli.main(["text", "import-hf", str(src), "--out", str(tmp_path / "p")]) == 2
    assert "field `hidden_act`: expected 'gelu'" in capsys.readouterr().err
