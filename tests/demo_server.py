"""Run the test Misskey server on its own, to try the integration without an account.

    python -m tests.demo_server [--port 3000] [--host 127.0.0.1]

`scripts/develop --demo` starts it beside Home Assistant. Enter its URL in the
Misskey set-up; its authorization page (`/auth/<token>`) has Allow and Cancel,
and its home page (`/`) lists the notes Home Assistant posted. Everything lives
in memory and is gone when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .misskey_server import VARIANTS, MisskeyServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.demo_server",
        description="A fake Misskey server for trying the integration.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=3000, help="port (0: any free)")
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default=VARIANTS[0],
        help="which Misskey (or fork) to imitate",
    )
    return parser.parse_args(argv)


async def serve(host: str, port: int, variant: str) -> None:
    """Run the server until SIGINT or SIGTERM."""
    server = MisskeyServer(variant, host=host, port=port)
    server.name = "Demo Misskey"
    try:
        url = await server.start()
    except OSError as err:
        await server.close()
        # One line, not a traceback: the port is taken, most likely.
        sys.exit(f"Demo Misskey: cannot listen on {host}:{port}: {err.strerror or err}")
    # Before the line: whoever reads it may stop us right away.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(  # noqa: T201 - the one thing this command says
        f"Demo Misskey on {url} — enter that URL in the Misskey set-up "
        f"(signed in as @{server.user.username}; notes listed on {url}/)",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tests.demo_server``."""
    args = parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.variant))


if __name__ == "__main__":
    main()
