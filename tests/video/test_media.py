"""estilo.video.media: clips in (checked), frames and clips out."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clips import panning, write_clip
from estilo.video.media import (
    FRAME_PATTERN,
    VideoError,
    frame_durations,
    open_clip,
    output_format,
    read_frames,
    write_frames,
)
from estilo.video.media import write_clip as write_output


def test_output_formats_by_suffix_and_a_folder_for_none(tmp_path: Path):
    assert output_format(tmp_path / "out.mp4") == "mp4"
    assert output_format(tmp_path / "out.MKV") == "matroska"
    assert output_format(tmp_path / "frames") is None
    with pytest.raises(VideoError, match="unknown video suffix '.xyz'"):
        output_format(tmp_path / "out.xyz")


def test_frame_durations_end_at_the_exact_times():
    gif = frame_durations(24, Fraction(24), 10)   # hundredths of a second
    assert sum(gif) == 1000 and set(gif) == {40, 50}
    assert frame_durations(3, Fraction(10), 1) == [100, 100, 100]


def test_a_folder_of_frames_round_trips_in_number_order(tmp_path: Path):
    frames = panning(3)
    (tmp_path / "in").mkdir()
    paths = write_frames(frames, tmp_path / "in")
    assert [p.name for p in paths] == [FRAME_PATTERN.format(i) for i in (1, 2, 3)]
    clip = open_clip(tmp_path / "in", max_frames=10, fps=Fraction(12))
    assert (clip.frames, clip.size, clip.fps, clip.audio) == (3, (64, 48), Fraction(12), False)
    back = list(read_frames(clip))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(back, frames))


def test_a_video_file_is_checked_and_decoded(tmp_path: Path):
    path = write_clip(tmp_path / "clip.mp4", panning(4), audio=True)
    clip = open_clip(path, max_frames=10)
    assert (clip.frames, clip.size, clip.audio) == (4, (64, 48), True)
    assert [im.size for im in read_frames(clip)] == [(64, 48)] * 4
    with pytest.raises(VideoError, match="more than --max-frames 3"):
        open_clip(path, max_frames=3)


def test_missing_and_empty_inputs_are_refused_in_one_line(tmp_path: Path):
    with pytest.raises(VideoError, match="no such file or folder"):
        open_clip(tmp_path / "gone.mp4", max_frames=10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="has no frames"):
        open_clip(tmp_path / "empty", max_frames=10)


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_frames_are_written_to_a_clip_that_reads_back(tmp_path: Path, suffix: str):
    (tmp_path / "frames").mkdir()
    paths = write_frames(panning(4, size=(32, 24)), tmp_path / "frames")
    out = write_output(tmp_path / f"out{suffix}", paths, Fraction(12))
    clip = open_clip(out, max_frames=10)
    assert clip.frames == 4 and clip.size == (32, 24)
    assert all(isinstance(im, Image.Image) for im in read_frames(clip))
