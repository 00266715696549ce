"""Colour preservation: luminance transfer, colour matching, the recolor command."""

import pytest

from estilo import cli
from estilo.color import (
    luminance,
)
from estilo.io.image import load_image, to_tensor
from estilo.io.output import read_parameters
from imaging import chroma_difference


def test_recolor_command_writes_luminance_with_the_contents_chroma(content_path, style_path,
                                                                   tmp_path, capsys):
    out, new = tmp_path / "out.png", tmp_path / "new.png"
    assert cli.main([str(content_path), str(style_path), "-o", str(out), "--weights", "random",
                     "--size", "48", "--iterations", "2", "--scales", "1", "-q"]) == 0
    assert cli.main(["recolor", str(out), str(content_path), "-o", str(new)]) == 0
    params = read_parameters(new)
    assert params["recolor"]["mode"] == "luminance" and params["config"]["weights"] == "random"
    result, stylised = to_tensor(load_image(new)), to_tensor(load_image(out))
    diff = chroma_difference(result, content_path, (48, 36))
    assert float(diff.mean()) < 0.02
    assert float((luminance(result) - luminance(stylised)).abs().mean()) < 0.02
    assert cli.main(["recolor", str(out), str(content_path), "-o", str(new), "--overwrite",
                     "--mode", "match"]) == 0
    assert read_parameters(new)["recolor"]["mode"] == "match"


def test_recolor_command_errors_are_one_line(content_path, tmp_path, capsys):
    code = cli.main(["recolor", str(tmp_path / "missing.png"), str(content_path), "-o",
                     str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "missing.png" in err
    with pytest.raises(SystemExit) as info:
        cli.main(["recolor", str(content_path), str(content_path), "-o", str(tmp_path / "x.png"),
                  "--mode", "hue"])
    assert info.value.code == 2
