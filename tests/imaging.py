"""Small helpers shared by the tests: encoded images, CSV tables, child processes and waiting
for a readiness signal (never a fixed sleep)."""

from __future__ import annotations

import csv
import io
import os
import selectors
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

import estilo

SRC = str(Path(estilo.__file__).resolve().parents[1])
"""The folder estilo was imported from: child processes import the same estilo."""
T = TypeVar("T")


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def pixel(im: Image.Image) -> tuple[int, int, int]:
    return im.getpixel((0, 0))


def close_to(a: tuple[int, ...], b: tuple[int, ...], tol: int = 3) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def chroma_difference(result, content_path, size):
    """Per-pixel largest difference of YIQ chroma between a result and the resized content."""
    from estilo.color import rgb_to_yiq
    from estilo.io.image import load_image, resize, to_tensor

    content = to_tensor(resize(load_image(content_path), size))
    return (rgb_to_yiq(result)[:, 1:] - rgb_to_yiq(content)[:, 1:]).abs().amax(1)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that runs this estilo (``python -m estilo ...``)."""
    path = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def wait_for(condition: Callable[[], T], timeout: float = 120.0, what: str = "a condition") -> T:
    """Poll ``condition`` until it returns something true (a file written, a server up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stderr_until(process: subprocess.Popen[str], marker: str, timeout: float = 120.0) -> str:
    """Read the child's stderr up to and including the first line that contains ``marker``:
    the child's own readiness signal. Returns what was read (the rest stays in the pipe)."""
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            if marker in line:
                return "".join(seen)
    raise AssertionError(f"no line with {marker!r} on stderr; it said: {''.join(seen)!r}")


def fault_in_the_network(monkeypatch: Any, fault: Callable[[int, dict[str, Any]], Any]) -> list[Any]:
    """Give every :class:`estilo.Stylizer` a network whose k-th forward pass with gradient (one
    per optimiser evaluation, k from 1) returns ``fault(k, features)`` instead of its features
    when that is not None. Returns the images those passes were given (detached copies).

    This goes through the public :meth:`Stylizer.extractor`, so it works for the library, the
    CLI and grids alike, whatever the loop's private helpers look like.
    """
    import torch

    from estilo import Stylizer

    seen: list[Any] = []
    real = Stylizer.extractor

    class Faulty(torch.nn.Module):
        def __init__(self, network: torch.nn.Module) -> None:
            super().__init__()
            self.network = network

        def forward(self, x: torch.Tensor, **options: Any) -> Any:
            features = self.network(x, **options)
            if not torch.is_grad_enabled():  # the targets, not an optimiser evaluation
                return features
            seen.append(x.detach().clone())
            changed = fault(len(seen), features)
            return features if changed is None else changed

    def extractor(self: Any, *args: Any, **kwargs: Any) -> Any:
        return Faulty(real(self, *args, **kwargs))

    monkeypatch.setattr(Stylizer, "extractor", extractor)
    return seen


def assert_one_line(exc: Any, *needles: str) -> str:
    """The message of an exception (pytest.raises' info): one line holding every needle."""
    text = str(exc.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, text
    return text
