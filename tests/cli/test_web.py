"""``estilo web``: exposure warnings and refusals, limits checked before serving."""

from __future__ import annotations

import pytest

from estilo import ConfigError
from estilo.cli.web import exposure_problem
from estilo.web import Limits


@pytest.mark.parametrize(("host", "share", "auth", "expected"), [
    ("127.0.0.1", False, None, None),
    ("localhost", False, None, None),
    ("::1", False, None, None),
    ("0.0.0.0", False, None, False),
    ("0.0.0.0", False, ("u", "p"), None),
    ("127.0.0.1", True, None, True),
    ("127.0.0.1", True, ("u", "p"), None),
])
def test_exposure_warnings(host: str, share: bool, auth: object, expected: bool | None) -> None:
    problem = exposure_problem(host, share, auth)
    assert (problem[1] if problem else None) is expected


def test_share_without_auth_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from estilo.cli import main

    assert main(["web", "--share"]) == 2
    assert "--share makes a public link" in capsys.readouterr().err


def test_bad_limits_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from estilo.cli import main

    # The page's size and iterations are clamped to the limits; other defaults are checked.
    assert main(["web", "--max-iterations", "10", "--scales", "0"]) == 2
    assert "scale_iterations must be between 1 and 10" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--queue-size must be positive"):
        Limits(queue_size=0)


def test_a_busy_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from estilo.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["web", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err, err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "give another --port" in err
