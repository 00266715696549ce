"""``estilo video``: a clip with sound in and out, other formats, bad inputs, resuming."""

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from clips import decoded, panning, streams, write_clip
from estilo import cli, read_parameters
from imaging import subprocess_env

FAST = ["--weights", "random", "--size", "48", "--iterations", "3", "--scales", "1",
        "--style-layers", "1,3", "--content-layers", "3", "--device", "cpu",
        "--frame-iterations", "2"]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4", panning(4, size=(64, 48)), audio=True)


def test_a_clip_keeps_its_audio_rate_and_frames(clip, style_path, tmp_path, capsys):
    out = tmp_path / "out" / "painted.mp4"
    assert cli.main(["video", str(clip), str(style_path), "-o", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "4 frames of 48x36 px at 12 fps" in err
    assert "estilo: frame 3/4: 2 iterations" in err                   # a line a frame (a log)
    assert "wrote" in err and "first" in err and "later frames" in err  # timings
    found, source = streams(out), streams(clip)
    assert found["video"][0] == "h264" and found["audio"][0] == "aac"
    assert found["audio"][1] == pytest.approx(source["audio"][1], abs=0.05)
    frames = decoded(out)
    assert len(frames) == 4 and frames[0].shape == (36, 48, 3)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == 12
    assert not (tmp_path / "out" / "painted_frames").exists()


def test_webm_gets_opus_and_gif_drops_the_sound(clip, style_path, tmp_path, caplog):
    webm, gif = tmp_path / "a.webm", tmp_path / "a.gif"
    assert cli.main(["video", str(clip), str(style_path), "-o", str(webm), "-q", *FAST]) == 0
    assert streams(webm)["audio"][0] == "opus" and streams(webm)["video"][0] == "vp9"
    assert cli.main(["video", str(clip), "--style", str(style_path), "-o", str(gif), *FAST]) == 0
    assert "GIF cannot carry sound: the audio track is left out" in caplog.text
    with Image.open(gif) as image:
        assert image.n_frames == 4 and image.size == (48, 36)


def test_a_folder_of_frames_in_and_out(style_path, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for i, frame in enumerate(panning(3, size=(64, 48)), start=1):
        frame.save(source / f"{i}.jpg")
    out = tmp_path / "out"
    assert cli.main(["video", str(source), str(style_path), "-o", str(out), "-q", "--fps",
                     "30000/1001", *FAST]) == 0
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [f"frame_00000{i}.png" for i in (1, 2, 3)]
    assert read_parameters(written[2])["video"]["fps"] == "30000/1001"


def test_running_again_continues(clip, style_path, tmp_path, capsys):
    from estilo import StyleConfig
    from estilo.video import VideoOptions, video_job

    out = tmp_path / "o.mp4"
    config = StyleConfig(weights="random", size=48, iterations=3, scales=1, device="cpu",
                         style_layers=("conv1_1", "conv2_1"), content_layers=("conv2_1",))
    job = video_job(clip, [style_path], out, config, options=VideoOptions(frame_iterations=2))
    frames = job.frames()
    next(frames), next(frames)
    frames.close()
    assert cli.main(["video", str(clip), str(style_path), "-o", str(out), *FAST]) == 0
    assert "2 done by an earlier run, 2 to go" in capsys.readouterr().err
    assert len(decoded(out)) == 4


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "notes.mp4").write_text("not a video")
    (tmp / "notes.txt").write_text("lorem ipsum dolor sit amet " * 100)  # FFmpeg's tty demuxer
    Image.new("RGB", (64, 48)).save(tmp / "still.png")
    write_clip(tmp / "sound.m4a", panning(4), audio=True, video=False)
    whole = write_clip(tmp / "whole.mp4", panning(6))
    (tmp / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (tmp / "empty").mkdir()
    (tmp / "exists.mp4").write_bytes(b"keep me")
    clip = str(whole)
    return {
        "missing": (["nowhere.mp4"], "no such file"),
        "not a video": ([str(tmp / "notes.mp4")], "cannot decode"),
        "a still image": ([str(tmp / "still.png")], "still image"),
        "a text file": ([str(tmp / "notes.txt")], "is a text file, not a video"),
        "no video stream": ([str(tmp / "sound.m4a")], "no video stream"),
        "truncated": ([str(tmp / "cut.mp4")], "cannot decode"),
        "an empty folder": ([str(tmp / "empty")], "has no frames"),
        "too long": ([clip, "--max-frames", "5"], "more than --max-frames 5"),
        "bad suffix": ([clip, "-o", str(tmp / "o.avi")], "unknown video suffix"),
        "output exists": ([clip, "-o", str(tmp / "exists.mp4")], "already exists"),
        "output is the input": ([clip, "-o", clip, "--overwrite"], "is the input clip"),
        "bad option": ([clip, "--frame-iterations", "0"], "--frame-iterations must be"),
    }


@pytest.mark.parametrize("case", ["missing", "not a video", "a still image", "a text file",
                                  "no video stream",
                                  "truncated", "an empty folder", "too long", "bad suffix",
                                  "output exists", "output is the input", "bad option"])
def test_bad_inputs_exit_2_with_one_line_and_write_nothing(case, style_path, tmp_path,
                                                           capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    args, message = _bad_inputs(work)[case]
    monkeypatch.chdir(work)
    before = sorted(work.rglob("*"))
    output = [] if "-o" in args else ["-o", str(work / "out.mp4")]
    assert cli.main(["video", args[0], str(style_path), *output, *FAST, *args[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(work.rglob("*")) == before


def test_without_the_video_extra_one_line_says_what_to_install(clip, style_path):
    code = ("import sys; sys.modules['av'] = None; from estilo import cli; "
            f"sys.exit(cli.main(['video', {str(clip)!r}, {str(style_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("estilo: error: estilo video needs PyAV and OpenCV: "
                           "pip install 'estilo[video]'\n")


def test_frames_match_the_library(clip, style_path, tmp_path):
    """The command and the API paint the same frames (one code path)."""
    from estilo import StyleConfig
    from estilo.video import VideoOptions, video_job

    out = tmp_path / "cli"
    assert cli.main(["video", str(clip), str(style_path), "-o", str(out), "-q", *FAST]) == 0
    config = StyleConfig(weights="random", size=48, iterations=3, scales=1, device="cpu",
                         style_layers=("1", "3"), content_layers=("3",))
    frames = list(video_job(clip, style_path, tmp_path / "api", config,
                            options=VideoOptions(frame_iterations=2)).frames())
    for frame in frames:
        with Image.open(out / frame.path.name) as painted:
            assert np.array_equal(np.asarray(painted.convert("RGB")), np.asarray(frame.image))


def test_the_readme_names_every_option_of_estilo_video():
    from estilo.cli import stylize
    from estilo.cli import video as video_cli

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Video"):readme.index("## Web app")]
    still = {s for a in stylize.build_parser()._actions for s in a.option_strings}
    own = [a.option_strings[-1] for a in video_cli.build_parser()._actions
           if a.option_strings and a.dest != "help" and not set(a.option_strings) & still]
    assert own and [o for o in own if f"`{o}" not in section] == []


def test_odd_sizes_are_painted_even_for_h264_and_said(clip, style_path, tmp_path, capsys,
                                                      caplog):
    out = tmp_path / "odd.mp4"
    assert cli.main(["video", str(clip), str(style_path), "-o", str(out), *FAST,
                     "--size", "47", "--keep-frames"]) == 0
    assert "need even sides: the frames are painted at 46x34, not 47x35" in caplog.text
    assert "4 frames of 46x34 px" in capsys.readouterr().err  # the plan says the true size
    with Image.open(tmp_path / "odd_frames" / "frame_000001.png") as first:
        assert first.size == (46, 34)
    assert decoded(out)[0].shape == (34, 46, 3)
    folder = tmp_path / "odd-frames"   # PNG frames keep any size
    assert cli.main(["video", str(clip), str(style_path), "-o", str(folder), "-q", *FAST,
                     "--size", "47"]) == 0
    with Image.open(folder / "frame_000001.png") as first:
        assert first.size == (47, 35)


def test_a_gif_plays_at_the_clips_rate(style_path, tmp_path):
    source = write_clip(tmp_path / "c24.mp4", panning(6, size=(64, 48)), fps=24)
    gif = tmp_path / "a.gif"
    assert cli.main(["video", str(source), str(style_path), "-o", str(gif), "-q", *FAST]) == 0
    with Image.open(gif) as image:
        durations = []
        for k in range(image.n_frames):
            image.seek(k)
            durations.append(image.info["duration"])
    assert set(durations) <= {40, 50} and sum(durations) == 250  # 6 frames at 24 fps: 0.25 s


def test_a_folder_of_transparent_frames_keeps_its_alpha(style_path, tmp_path, caplog):
    source = tmp_path / "in"
    source.mkdir()
    for i, frame in enumerate(panning(3, size=(64, 48)), start=1):
        rgba = frame.convert("RGBA")
        alpha = Image.new("L", frame.size, 255)
        alpha.paste(0, (0, 0, 20, 48))  # the left third transparent
        rgba.putalpha(alpha)
        rgba.save(source / f"{i}.png")
    out = tmp_path / "out"
    assert cli.main(["video", str(source), str(style_path), "-o", str(out), "-q",
                     "--keep-alpha", *FAST]) == 0
    for i in (1, 3):
        with Image.open(out / f"frame_{i:06d}.png") as frame:
            assert frame.mode == "RGBA"
            assert frame.getpixel((2, 20))[3] == 0 and frame.getpixel((40, 20))[3] == 255
    mp4 = tmp_path / "painted.mp4"
    assert cli.main(["video", str(source), str(style_path), "-o", str(mp4), "--keep-alpha",
                     *FAST]) == 0
    assert "MP4 cannot store transparency" in caplog.text
