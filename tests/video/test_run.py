"""The clip job: frames as records, the work folder, resume, and what the temporal loss buys."""

import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from clips import panning, write_clip
from estilo import StyleConfig, Stylizer, read_parameters
from estilo.io.image import to_tensor
from estilo.io.output import OutputError
from estilo.video import Frame, VideoOptions, flow, video_job
from estilo.video.run import MANIFEST, temporal_loss

STEP = (2, 1)  # the camera's move per frame: the previous frame is at +STEP


@pytest.fixture
def config() -> StyleConfig:
    return StyleConfig(weights="random", size=64, iterations=8, scales=1, device="cpu",
                       style_layers=("conv1_1", "conv2_1", "conv3_1"),
                       content_layers=("conv3_1",))


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.mp4", panning(5, size=(64, 48), step=STEP))


def warping_errors(frames: list[Image.Image]) -> float:
    """Mean warping error over consecutive frames, with the true flow."""
    known = np.broadcast_to(np.array(STEP, np.float32), (48, 64, 2))
    weights = flow.inside(known).astype(np.float32)
    tensors = [to_tensor(f) for f in frames]
    return float(np.mean([flow.warping_error(b, a, known, weights)
                          for a, b in itertools.pairwise(tensors)]))


def test_frames_are_records_saved_with_their_parameters(clip, style_path, tmp_path, config):
    job = video_job(clip, style_path, tmp_path / "out.mp4", config,
                    options=VideoOptions(frame_iterations=3))
    frames = list(job.frames())
    assert [f.index for f in frames] == [1, 2, 3, 4, 5] and all(isinstance(f, Frame) for f in frames)
    assert [f.iterations for f in frames] == [8, 3, 3, 3, 3]
    assert frames[0].reliable == 0 and all(f.reliable > 0.8 for f in frames[1:])
    assert "temporal" not in frames[0].terms and all("temporal" in f.terms for f in frames[1:])
    params = read_parameters(frames[2].path)
    assert params["video"]["frame"] == 3 and params["video"]["frames"] == 5
    assert params["config"]["iterations"] == 3 and params["iterations_done"] == 3
    assert frames[2].path.parent == tmp_path / "out_frames"
    assert json.loads((tmp_path / "out_frames" / MANIFEST).read_text())["clip"]["frames"] == 5
    job.encode()
    assert (tmp_path / "out.mp4").is_file() and not (tmp_path / "out_frames").exists()


def test_the_temporal_loss_lowers_the_warping_error(clip, style_path, tmp_path, config):
    stylizer = Stylizer()
    source = panning(5, size=(64, 48), step=STEP)
    independent = [stylizer.run(frame, style_path, config).image for frame in source]
    coherent = [f.image for f in video_job(clip, style_path, tmp_path / "v.mp4", config,
                                           options=VideoOptions(frame_iterations=4),
                                           stylizer=stylizer).frames()]
    unheld = [f.image for f in video_job(clip, style_path, tmp_path / "w.mp4", config,
                                         options=VideoOptions(frame_iterations=4,
                                                              temporal_weight=0),
                                         stylizer=stylizer).frames()]
    content = warping_errors(source)
    assert warping_errors(coherent) < 0.5 * warping_errors(independent)
    assert warping_errors(coherent) < warping_errors(unheld)  # the loss itself helps
    assert content < warping_errors(coherent)  # the floor: a clip with the same motion


def test_resume_after_an_interruption_gives_the_same_frames(clip, style_path, tmp_path, config):
    options = VideoOptions(frame_iterations=3, keep_frames=True)
    whole = [np.asarray(f.image) for f in video_job(clip, style_path, tmp_path / "a.mp4", config,
                                                    options=options).frames()]

    def stop_in_frame_4(index, step):
        if index == 4 and step.iteration == 2:
            raise KeyboardInterrupt

    job = video_job(clip, style_path, tmp_path / "b.mp4", config, options=options)
    with pytest.raises(KeyboardInterrupt):
        job.run(stop_in_frame_4)
    assert sorted(p.name for p in (tmp_path / "b_frames").glob("*.png")) == [
        "frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert not (tmp_path / "b.mp4").exists()
    again = video_job(clip, style_path, tmp_path / "b.mp4", config, options=options)
    assert again.done == 3
    frames = list(again.frames())
    assert [f.resumed for f in frames] == [True, True, True, False, False]
    for expected, frame in zip(whole, frames):
        assert np.array_equal(expected, np.asarray(frame.image))
    again.encode()
    assert (tmp_path / "b.mp4").is_file() and (tmp_path / "b_frames").is_dir()  # keep_frames


def test_frames_of_another_run_are_refused_unless_overwrite(clip, style_path, tmp_path, config):
    options = VideoOptions(frame_iterations=2)
    job = video_job(clip, style_path, tmp_path / "o.mp4", config, options=options)
    next(job.frames())
    changed = config.replace(seed=3)
    with pytest.raises(OutputError, match="another run.*--overwrite"):
        video_job(clip, style_path, tmp_path / "o.mp4", changed, options=options)
    again = video_job(clip, style_path, tmp_path / "o.mp4", changed, options=options,
                      overwrite=True)
    assert again.done == 0 and not list((tmp_path / "o_frames").glob("*.png"))


def test_a_folder_in_and_out_in_luminance_mode(style_path, tmp_path, config):
    source = tmp_path / "frames"
    source.mkdir()
    for i, frame in enumerate(panning(3, size=(64, 48), step=STEP), start=7):
        frame.save(source / f"shot{i}.png")
    job = video_job(source, style_path, tmp_path / "painted",
                    config.replace(preserve_color="luminance"),
                    options=VideoOptions(frame_iterations=2))
    assert job.clip.frames == 3 and job.clip.fps == 24
    job.run()
    written = sorted((tmp_path / "painted").iterdir())
    assert [p.name for p in written] == ["frame_000001.png", "frame_000002.png",
                                         "frame_000003.png"]
    assert read_parameters(written[1])["video"]["start"] == "previous frame warped by the flow"


def test_temporal_loss_holds_only_reliable_pixels():
    target = torch.zeros(1, 3, 4, 4)
    weights = torch.zeros(1, 1, 4, 4)
    weights[..., :2] = 1.0
    image = torch.ones(1, 3, 4, 4)
    loss = temporal_loss(target, weights, 10.0)
    assert float(loss(image)["temporal"]) == pytest.approx(5.0)
    image[..., :2] = 0.0  # wrong only where it is not held
    assert float(loss(image)["temporal"]) == 0.0
    assert float(loss(torch.ones(1, 3, 8, 8))["temporal"]) == pytest.approx(5.0)  # resized
