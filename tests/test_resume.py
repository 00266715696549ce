"""Continuing a run from a saved image (``estilo resume`` is tested in tests/cli/)."""

from pathlib import Path

import pytest
from PIL import Image

from estilo import ConfigError, ImageError, StyleConfig, Stylizer
from estilo.io.output import save_image
from estilo.resume import resume_job

CONFIG = StyleConfig(weights="random", size=48, scales=2, start_size=24, scale_iterations=4,
                     iterations=3, style_layers="1,3", content_layers="3", device="cpu")


def _stopped_at(k: int, content: Path, style: Path, out: Path) -> None:
    """What a stopped run leaves: its image at step ``k``, with its parameters."""
    job = Stylizer().job(content, style, CONFIG)
    for step in job.steps():
        if step.iteration == k:
            break
    save_image(job.picture(step.image), out,
               parameters=job.parameters(step, interrupted=True))


def test_resume_job_api_after_a_coarse_level(content_path, style_path, tmp_path):
    out = tmp_path / "ms.png"
    _stopped_at(2, content_path, style_path, out)
    with Image.open(out) as img:
        assert img.size == (24, 18)  # saved at the coarse level it reached
    job = resume_job(out, device="cpu")
    assert (job.config.iterations, job.config.scales, job.config.device) == (3, 1, "cpu")
    result = job.run()
    assert result.image.size == (48, 36)
    assert result.parameters["iterations_done"] == 5
    assert result.parameters["resumed_from"] == {"path": str(out.resolve()), "iterations_done": 2}
    with pytest.raises(ImageError, match="no estilo parameters"):
        resume_job(content_path)
    with pytest.raises(ConfigError, match="give all of them"):
        resume_job(out, styles=[])
