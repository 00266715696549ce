"""``estilo demo``: the main command on the bundled example, with every option."""

import pytest

from estilo import cli
from estilo.demo import demo_paths
from estilo.io.output import read_parameters

FAST = ["--weights", "random", "--size", "48", "--iterations", "3", "--scales", "1", "-q",
        "--style-layers", "1,3", "--content-layers", "3", "--device", "cpu"]


def test_demo_paints_the_bundled_example(tmp_path, capsys):
    content, style = demo_paths()
    assert content.is_file() and style.is_file() and content.parent.name == "examples"
    out = tmp_path / "demo.png"
    assert cli.main(["demo", "-o", str(out), *FAST]) == 0
    params = read_parameters(out)
    assert params["inputs"]["content"]["path"] == str(content.resolve())
    assert [s["name"] for s in params["inputs"]["styles"]] == ["starry_night.jpg"]
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--help"])
    assert info.value.code == 0 and "The Starry" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "extra.jpg", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "unrecognized arguments: extra.jpg" in err
