"""scripts/develop and the demo server refuse ports that something else listens on.

Nothing here starts Home Assistant: the port check comes before anything starts,
so a refused run ends within a second. The ports are ones the tests bind
themselves, passed with --port and --demo-port; a free one is kept bound
without listening (conftest's refused_port), so that no other program takes it.
"""

from __future__ import annotations

from collections.abc import Iterator
import hashlib
from pathlib import Path
import socket
import subprocess
import sys

import pytest

REPO = Path(__file__).resolve().parents[1]
DEVELOP = REPO / "scripts" / "develop"


@pytest.fixture
def listening(socket_enabled: None) -> Iterator[list[int]]:
    """Return two ports that servers of the test listen on, on 127.0.0.1."""
    sockets = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sockets.append(sock)
    yield [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()


def config_state() -> str:
    """Return a digest of what scripts/develop would write in config/."""
    digest = hashlib.sha256()
    for path in (REPO / "config").glob("**/*"):
        if path.is_file() and not path.is_symlink():
            digest.update(str(path).encode() + path.read_bytes())
    return f"{(REPO / 'config').exists()}:{digest.hexdigest()}"


def develop(*args: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/develop; a refused run must end at once."""
    return subprocess.run(
        ["bash", str(DEVELOP), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        check=False,
    )


def test_both_ports_taken(listening: list[int]) -> None:
    """Home Assistant's and the demo server's ports in use: one line, status 1."""
    port, demo_port = listening
    before = config_state()

    result = develop("--demo", "--port", str(port), "--demo-port", str(demo_port))

    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line == (
        f"scripts/develop: 127.0.0.1:{port} (Home Assistant) and "
        f"127.0.0.1:{demo_port} (demo Misskey server) are already in use by other "
        "programs: stop them, or choose other ports with --port and --demo-port. "
        "Nothing was started."
    )
    assert config_state() == before


def test_demo_port_taken(listening: list[int], refused_port: int) -> None:
    """Only the demo server's port in use: the line names it and its option."""
    demo_port = listening[0]

    result = develop(f"--port={refused_port}", f"--demo-port={demo_port}")

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line == (
        f"scripts/develop: 127.0.0.1:{demo_port} (demo Misskey server) is already "
        "in use by another program: stop it, or choose another port with "
        "--demo-port. Nothing was started."
    )


def test_home_assistant_port_taken(listening: list[int]) -> None:
    """Without --demo only Home Assistant's port counts."""
    result = develop("--port", str(listening[0]))

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line == (
        f"scripts/develop: 127.0.0.1:{listening[0]} (Home Assistant) is already "
        "in use by another program: stop it, or choose another port with --port. "
        "Nothing was started."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "http"], "--port needs a port number (1-65535), not 'http'"),
        (["--demo-port"], "--demo-port needs a port number (1-65535), not ''"),
        (["--port=70000"], "--port needs a port number (1-65535), not '70000'"),
        (
            ["--port", "4000", "--demo-port", "4000"],
            "Home Assistant and the demo Misskey server need two ports, not both 4000",
        ),
    ],
)
def test_bad_ports(args: list[str], message: str) -> None:
    """A port that cannot be one is a usage error (status 2)."""
    before = config_state()

    result = develop(*args)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"scripts/develop: {message}"]
    assert config_state() == before


def demo_server(port: int) -> subprocess.Popen[str]:
    """Start the demo server the way scripts/develop does."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.demo_server", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_demo_server_on_a_taken_port(listening: list[int]) -> None:
    """Should the port be taken after the check, the demo server says so in one line.

    scripts/develop waits for its address line and stops when it exits instead.
    """
    process = demo_server(listening[0])
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 1
    assert stdout == ""
    (line,) = stderr.splitlines()
    assert line.startswith(f"Demo Misskey: cannot listen on 127.0.0.1:{listening[0]}: ")


def test_demo_server_says_where_it_listens(refused_port: int) -> None:
    """The demo server's one line names the address it really listens on."""
    process = demo_server(refused_port)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.terminate()
        process.communicate(timeout=30)

    assert line.startswith(
        f"Demo Misskey on http://127.0.0.1:{refused_port} — enter that URL"
    )
    assert process.returncode == 0
