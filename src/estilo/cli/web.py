"""``estilo web``: check the options, then serve the web app (:mod:`estilo.web`) until Ctrl-C.

StyleConfig options set the page's defaults; the server's limits are options too. The app
binds to this machine only unless ``--host`` says otherwise, and refuses a public link
without a login.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import ipaddress
import socket
import sys
from collections.abc import Sequence

from ..config import StyleConfig
from ..options import flag
from ..web import Limits, Studio, launch, long_side, stop_on_signals
from .shell import Parser, add_config_options, config_from_args, guarded


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``estilo web``; StyleConfig options set the page's defaults."""
    parser = Parser(prog="estilo web", description="Serve the estilo web app (Gradio).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default %(default)s: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next free)")
    parser.add_argument("--share", action="store_true",
                        help="also make a public gradio.live link (requires --auth)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", type=_auth,
                        help="require this login (needed with --share or a public --host)")
    for f in dataclasses.fields(Limits):
        parser.add_argument(flag(f.name), type=type(f.default),
                            default=f.default, help=f"limit: {_LIMIT_HELP[f.name]} "
                            "(default %(default)s)")
    add_config_options(parser)
    return parser


_LIMIT_HELP = {
    "max_size": "largest output long side in px", "max_iterations": "most iterations per level",
    "max_pixels": "most pixels in an uploaded image", "max_upload_mb": "largest upload in MB",
    "queue_size": "most jobs waiting", "time_limit": "seconds per job, 0 for none",
    "preview_every": "seconds between preview updates",
}


def _auth(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not (sep and user and password):
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


def exposure_problem(host: str, share: bool, auth: object) -> tuple[str, bool] | None:
    """A warning (False) or refusal (True) when the app is reachable by others without a login."""
    if auth:
        return None
    if share:
        return ("--share makes a public link anyone can use: add --auth USER:PASSWORD", True)
    if not _loopback(host):
        message = (f"listening on {host} without --auth: anyone on the network can use this "
                   "machine's CPU/GPU; add --auth USER:PASSWORD")
        return message, False
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``estilo web``: check the options, then serve until Ctrl-C."""
    args = build_parser().parse_args(argv)
    return guarded(lambda: _serve(args, config_from_args(args)))


def _serve(args: argparse.Namespace, defaults: StyleConfig) -> int:
    problem = exposure_problem(args.host, args.share, args.auth)
    if problem and problem[1]:
        print(f"estilo web: error: {problem[0]}", file=sys.stderr)
        return 2
    if problem:
        print(f"estilo web: WARNING: {problem[0]}", file=sys.stderr)
    limits = Limits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Limits)})
    defaults = defaults.replace(size=min(long_side(defaults.size), limits.max_size),
                                iterations=min(defaults.iterations, limits.max_iterations))
    if importlib.util.find_spec("gradio") is None:
        print("estilo web: error: the web app needs Gradio: pip install 'estilo[web]'",
              file=sys.stderr)
        return 2
    busy = port_problem(args.host, args.port)
    if busy:
        print(f"estilo web: error: {busy}", file=sys.stderr)
        return 2
    stopping = stop_on_signals()  # before the studio's folder exists: it always goes
    studio = Studio(defaults, limits)
    try:
        studio.check_limits(defaults)
    except BaseException:
        studio.close()
        raise
    try:
        launch(studio, host=args.host, port=args.port, share=args.share, auth=args.auth,
               stopping=stopping)
    except OSError as e:  # taken between the check and the start (Gradio: "Cannot find empty port")
        if args.port is None or "port" not in str(e).lower():
            raise
        print(f"estilo web: error: {port_problem(args.host, args.port) or e}", file=sys.stderr)
        return 2
    return 0


def port_problem(host: str, port: int | None) -> str | None:
    """Why ``estilo web`` cannot listen on ``host:port`` (a port in use), or None."""
    if port is None:
        return None  # Gradio takes the first free port from 7860
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as e:
        return (f"cannot listen on {host}:{port} ({e.strerror or e}): give another --port, "
                "or leave --port out to take the first free one from 7860")
    return None
