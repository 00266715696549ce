"""The README runs as written: every ``estilo`` command in its ``sh`` blocks, at a tiny size.

The commands run in README order, in one folder that holds the files they name (made here,
small) beside links to the checkout's ``src/`` and ``docs/`` (the bundled images, the
gallery's mask); each gets options that make it fast (random weights, 48 px, one iteration
a level, the first layer only) after its own, which they replace. A line marked ``# not run in CI`` says why in the
README and is skipped here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from clips import panning, write_clip
from conftest import make_content, make_style
from estilo import StyleConfig, Stylizer, cli, save_image
from estilo.io.image import working_size
from estilo.pyramid import describe, schedule

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIP = "# not run in CI"
RUN = ["--weights", "random", "--size", "48", "--iterations", "1", "--scale-iterations", "1",
       "--style-layers", "relu1_1", "--content-layers", "relu1_1", "--overwrite", "-q"]
FAST = {"": RUN, "demo": RUN, "grid": RUN, "batch": [*RUN, "--workers", "1"],
        "video": [*RUN, "--frame-iterations", "1"],
        "resume": ["--iterations", "2", "--size", "48", "-q"],
        "recolor": ["--overwrite"]}


def sh_commands(text: str) -> list[tuple[int, str]]:
    """``(line number, command)`` of every ``estilo`` line in the ``sh`` blocks of ``text``,
    with the block's shell variables (``E=...``) expanded."""
    found: list[tuple[int, str]] = []
    language: str | None = None
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            language = line[3:].strip() if language is None else None
            variables = {}
            continue
        if language != "sh":
            continue
        assignment = re.fullmatch(r"([A-Z]+)=(.*)", line.strip())
        if assignment:
            variables[assignment.group(1)] = " ".join(shlex.split(assignment.group(2)))
            continue
        for name, value in variables.items():
            line = line.replace(f"${name}", value)
        if line.startswith("estilo "):
            found.append((number, line))
    return found


COMMANDS = sh_commands(README.read_text(encoding="utf-8"))


def _toml_block(text: str) -> str:
    """The README's example grid file (the ```toml block)."""
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    return "\n".join(line.strip() for line in block.splitlines()) + "\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with every file the README's commands name."""
    root = tmp_path_factory.mktemp("readme")
    for name in ("src", "docs"):
        (root / name).symlink_to(ROOT / name)
    photo, painting = make_content((96, 72)), make_style((80, 80))
    for name in ("photo.jpg", "a.jpg", "moved/photo.jpg", "photos/beach.jpg",
                 "photos/street.jpg", "extra/cat.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        photo.save(root / name)
    for name in ("painting.jpg", "b.jpg", "monet.jpg", "paintings/swirl.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        painting.save(root / name)
    make_style((64, 64)).rotate(90).save(root / "paintings" / "turned.jpg")
    (root / "pairs.csv").write_text("content,style\nphotos/beach.jpg,paintings/swirl.jpg\n"
                                    "photos/street.jpg,paintings/turned.jpg\n")
    (root / "my-grid.toml").write_text(_toml_block(README.read_text(encoding="utf-8")))
    write_clip(root / "clip.mp4", panning(3, size=(64, 48)))
    (root / "frames").mkdir()
    for index, frame in enumerate(panning(3, size=(64, 48)), start=1):
        frame.save(root / "frames" / f"frame{index:03d}.png")
    return root


def _stopped_run(root: Path) -> None:
    """``out.png`` as a run stopped after 1 of its 2 iterations leaves it (for resume)."""
    config = StyleConfig(weights="random", size=48, iterations=2, scales=1,
                         style_layers=("relu1_1",), content_layers=("relu1_1",))
    job = Stylizer().job(root / "photo.jpg", root / "painting.jpg", config)
    step = next(job.steps())
    save_image(job.picture(step.image), root / "out.png",
               parameters=job.parameters(step, interrupted=True))


def test_the_readme_has_commands_to_run() -> None:
    subcommands = {shlex.split(c)[1] for _, c in COMMANDS}
    assert {"demo", "resume", "grid", "batch", "video", "recolor"} <= subcommands
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize(("number", "command"), COMMANDS, ids=[f"line{n}" for n, _ in COMMANDS])
def test_every_readme_command_runs(number: int, command: str, workspace: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if SKIP in command:
        pytest.skip(command.split(SKIP, 1)[1].strip(" :"))
    argv = shlex.split(command, comments=True)[1:]
    subcommand = argv[0] if argv[0] in FAST else ""
    monkeypatch.chdir(workspace)
    if subcommand == "resume":
        _stopped_run(workspace)
    assert cli.main([*argv, *FAST[subcommand]]) == 0, f"README line {number}: {command}"


def test_the_plan_line_quoted_is_what_estilo_prints() -> None:
    """The Command line section's example plan (``estilo demo ... --size 1024 --upscale``)."""
    text = README.read_text(encoding="utf-8").replace("\n", " ")
    quoted = re.search(r"`estilo:\s+(\d+ levels?: .*?)`", text)
    assert quoted is not None
    with Image.open(ROOT / "src" / "estilo" / "data" / "examples" / "content.jpg") as photo:
        size = working_size(photo.size, 1024, allow_upscale=True)
    assert re.sub(r"\s+", " ", quoted.group(1)) == describe(schedule(size, StyleConfig()))
