"""`latentstudio serve`: the local gallery web page over a runs folder."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import webbrowser
from pathlib import Path

from latentstudio.errors import UserError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `serve` command."""
    p = sub.add_parser(
        "serve",
        help="browse runs, watch training, star favourites and play with latents in a web page",
        description="Serve a local web gallery over a runs folder: every run with its latest\n"
                    "samples (refreshing while it trains), epoch grids, progress GIF and losses;\n"
                    "star pictures into RUN/curated/; move a trained model's latent along its\n"
                    "principal directions and concept vectors; interpolate between favourites.",
        epilog="examples:\n"
               "  latentstudio serve\n"
               "  latentstudio serve runs --port 8080 --no-browser\n"
               "  latentstudio serve ~/art/runs --host 0.0.0.0   (visible on your network)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR",
                   help="folder holding the run folders (default: runs)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this computer only)")
    p.add_argument("--device", default="cpu",
                   help="where models run for play/samples: cpu (default), cuda or auto")
    p.add_argument("--no-browser", dest="browser", action="store_false",
                   help="do not open a browser tab")
    p.set_defaults(func=run_serve)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a UserError naming the problem (port taken, bad address)."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(f"--host {host!r} is not an address of this computer") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        hint = f"; try --port {port + 1}" if port else ""
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}){hint}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run_serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from latentstudio.web.app import create_app

    # Requests render one small image each and often share the CPU with a training run: one
    # intra-op thread per request avoids the thread thrashing that makes renders take seconds.
    torch.set_num_threads(1)
    root = Path(args.runs_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"runs folder {root} does not exist; train a run first "
                        "(latentstudio demo) or name the folder: latentstudio serve PATH")
    loopback = args.host in LOOPBACK
    hosts = ["127.0.0.1", "localhost", "[::1]", "::1"] if loopback else None
    app = create_app(root, device=args.device, allowed_hosts=hosts)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
    if not loopback:
        print(f"warning: serving on {args.host}: anyone who can reach this computer can browse "
              "and star your runs", file=sys.stderr)
    print(f"latentstudio gallery for {root.resolve()} at {url}  (Ctrl-C to stop)", file=sys.stderr)
    if args.browser and sys.stdout.isatty():
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0
