"""--spec: inline JSON or a JSON file; a missing file, bad JSON or a non-object is one line naming it."""

import pytest

from posebridge import cli
from posebridge.errors import ConfigError
from posebridge.specs import load_spec


def test_inline_and_file(tmp_path):
    assert load_spec('{"a": 1}', "x: --spec") == {"a": 1}
    (tmp_path / "s.json").write_text('{"b": [1, 2]}')
    assert load_spec(str(tmp_path / "s.json"), "x: --spec") == {"b": [1, 2]}
    assert load_spec("  ", "x: --spec") == {}


@pytest.mark.parametrize("text, message", [
    ("missing.json", "x: --spec: no such file missing.json"),
    ("dir/missing", "x: --spec: no such file dir/missing"),
    ("{oops", r"x: --spec is not valid JSON"),
    ("[1, 2]", "x: --spec must be a JSON object"),
])
def test_errors_name_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        load_spec(text, "x: --spec")


def test_a_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("train: {epochs: 3}")
    with pytest.raises(ConfigError, match=r"x: --spec file .*bad.json is not valid JSON"):
        load_spec(str(tmp_path / "bad.json"), "x: --spec")


def test_synth_generate_with_a_missing_spec_file(tmp_path, capsys):
    assert cli.main(["synth", "generate", "--spec", "missing.json", "--name", "d", "--role", "labeled", "--output", str(tmp_path / "d.h5")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no such file missing.json" in err, err
    assert list(tmp_path.iterdir()) == []
