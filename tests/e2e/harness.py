"""A real Home Assistant and a real browser for the end-to-end tests.

Nothing here runs inside the test process's Home Assistant: `HomeAssistantProcess`
starts `python -m homeassistant` as a child process on a free loopback port with a
throw-away configuration folder (this checkout's custom_components linked in),
`onboard` finishes onboarding over HTTP as the frontend does, and `launch_browser`
and `login` drive Debian's (or any system) Chromium through Playwright.

Playwright is imported lazily: it is in requirements_dev.txt only, and the unit
test run must be able to import this package without it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any
import urllib.error
import urllib.parse
import urllib.request

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "e2e-artifacts"

USERNAME = "e2e"
PASSWORD = "e2e-password-1"
NAME = "E2E Tester"

# Flags that work for headless Chromium in a container without a GPU, a sandbox
# or a network; Playwright adds --headless and a fresh --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The header the frontend sends with config flow requests; flows that hand the
# browser an external URL (OAuth2, and Misskey's authorization page) build their
# callback URL from it. REST callers have to send it themselves.
HEADER_FRONTEND_BASE = "HA-Frontend-Base"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpError(Exception):
    """A request to Home Assistant answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        """Keep the status and body."""
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def http_request(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Any:
    """Send one request; return the decoded JSON body (or text, or None)."""
    data = None
    all_headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode()
    except urllib.error.HTTPError as err:
        raise HttpError(err.code, err.read().decode(errors="replace")) from None
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def http_storage(port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """Return .storage/http with a confirmed config: HOST:PORT, defaults otherwise."""
    stable = {
        "server_host": [host],
        "server_port": port,
        "cors_allowed_origins": ["https://cast.home-assistant.io"],
        "login_attempts_threshold": -1,
        "ip_ban_enabled": True,
        "ssl_profile": "modern",
        "use_x_frame_options": True,
        "created_at": "2026-01-01T00:00:00+00:00",
        "error": None,
        "error_message": None,
    }
    return {
        "version": 2,
        "minor_version": 2,
        "key": "http",
        "data": {"stable": stable, "pending": None, "yaml_migration_done": True},
    }


@dataclass
class Credentials:
    """What onboarding leaves behind: a user and tokens for the REST API."""

    username: str
    password: str
    client_id: str
    access_token: str
    refresh_token: str
    long_lived_token: str | None = None

    @property
    def token(self) -> str:
        """The token to use: the long-lived one when there is one."""
        return self.long_lived_token or self.access_token


@dataclass
class HomeAssistantProcess:
    """`python -m homeassistant` in a child process, on 127.0.0.1:port."""

    config_dir: Path
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    credentials: Credentials | None = None
    startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        """Where the frontend and the API are."""
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        """Make the configuration folder: YAML, custom_components, network."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        configuration = self.config_dir / "configuration.yaml"
        # Kept when started again: tests add automations to it.
        if not configuration.exists():
            configuration.write_text(
                "default_config:\n"
                "\n"
                "logger:\n"
                "  default: info\n"
                "  logs:\n"
                "    custom_components.misskey: debug\n"
            )
        link = self.config_dir / "custom_components"
        if not link.exists():
            link.symlink_to(REPO / "custom_components", target_is_directory=True)
        storage = self.config_dir / ".storage"
        storage.mkdir(exist_ok=True)
        # The HTTP server's address. Since 2026.x Home Assistant keeps it in
        # .storage/http: an `http:` YAML block is migrated there once, as a
        # "pending" trial that the frontend asks to confirm (a modal dialog over
        # every page) and that is reverted, with a restart, after 5 minutes.
        # A confirmed ("stable") entry avoids both.
        (storage / "http").write_text(json.dumps(http_storage(self.port)))
        # Discovery (zeroconf, ssdp) only on loopback: the network integration's
        # stored adapter choice, as its settings page would save it.
        network = storage / "core.network"
        if not network.exists():
            network.write_text(
                json.dumps(
                    {
                        "version": 1,
                        "minor_version": 1,
                        "key": "core.network",
                        "data": {"configured_adapters": ["lo"]},
                    }
                )
            )

    def start(self, timeout: float = 180) -> None:
        """Start Home Assistant and wait until its HTTP server answers."""
        self.write_config()
        log_path = self.log_path or self.config_dir / "hass.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        started = time.monotonic()
        # Appended to: a process started again keeps the log of the first.
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "homeassistant",
                    "-c",
                    str(self.config_dir),
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.config_dir,
                start_new_session=True,
            )
        deadline = started + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Home Assistant exited with {self.process.returncode}:\n"
                    + self.log_tail()
                )
            try:
                http_request("GET", f"{self.base_url}/api/onboarding", timeout=5)
                break
            except HttpError:
                # Once onboarded, Home Assistant answers 404 there: it is up.
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"Home Assistant did not answer within {timeout} s:\n"
                    + self.log_tail()
                )
            time.sleep(0.25)
        self.startup_seconds = time.monotonic() - started

    def stop(self, timeout: float = 30) -> None:
        """Stop Home Assistant (SIGTERM, then SIGKILL) and its children."""
        if self.process is None or self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(10)

    def kill(self) -> None:
        """Kill Home Assistant at once (SIGKILL), as a power cut would."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(os.getpgid(self.process.pid), signal.SIGKILL)
        self.process.wait(10)

    def log_text(self) -> str:
        """Everything Home Assistant logged so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        """Return the end of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --- onboarding and the REST API -------------------------------------

    def onboard(
        self,
        username: str = USERNAME,
        password: str = PASSWORD,
        name: str = NAME,
        language: str = "en",
    ) -> Credentials:
        """Finish onboarding over HTTP, as the onboarding pages do."""
        base = self.base_url
        client_id = f"{base}/"
        code = http_request(
            "POST",
            f"{base}/api/onboarding/users",
            json_body={
                "client_id": client_id,
                "name": name,
                "username": username,
                "password": password,
                "language": language,
            },
        )["auth_code"]
        tokens = http_request(
            "POST",
            f"{base}/auth/token",
            form={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": client_id,
            },
        )
        creds = Credentials(
            username=username,
            password=password,
            client_id=client_id,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )
        self.credentials = creds
        self.api("POST", "/api/onboarding/core_config")
        self.api("POST", "/api/onboarding/analytics")
        self.api(
            "POST",
            "/api/onboarding/integration",
            {"client_id": client_id, "redirect_uri": f"{base}/?auth_callback=1"},
        )
        # In a thread of its own: Playwright's sync API may run a loop in this one.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            creds.long_lived_token = pool.submit(
                asyncio.run, self._long_lived_token()
            ).result()
        return creds

    async def _long_lived_token(self) -> str:
        """Ask the websocket API for a long-lived access token."""
        import aiohttp  # noqa: PLC0415 - Home Assistant's own dependency

        assert self.credentials is not None
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{self.base_url}/api/websocket") as ws,
        ):
            assert (await ws.receive_json())["type"] == "auth_required"
            await ws.send_json(
                {"type": "auth", "access_token": self.credentials.access_token}
            )
            reply = await ws.receive_json()
            assert reply["type"] == "auth_ok", reply
            await ws.send_json(
                {
                    "id": 1,
                    "type": "auth/long_lived_access_token",
                    "client_name": "e2e harness",
                    "lifespan": 1,
                }
            )
            reply = await ws.receive_json()
            assert reply["success"], reply
            return str(reply["result"])

    def api(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        frontend_base: bool = False,
    ) -> Any:
        """Call the REST API as the onboarded user.

        frontend_base sends HA-Frontend-Base like the frontend does, which config
        flows with an external step need (POST /api/config/config_entries/flow).
        """
        assert self.credentials is not None, "onboard() first"
        headers = {"Authorization": f"Bearer {self.credentials.token}"}
        if frontend_base:
            headers[HEADER_FRONTEND_BASE] = self.base_url
        return http_request(
            method, f"{self.base_url}{path}", json_body=json_body, headers=headers
        )

    def wait_running(self, timeout: float = 120) -> None:
        """Wait until Home Assistant reports the RUNNING state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.api("GET", "/api/config").get("state")
            if state == "RUNNING":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Home Assistant still {state} after {timeout} s")
            time.sleep(0.5)


# --- waiting, and an account -------------------------------------------------


def until(what: str, check: Any, timeout: float = 30) -> Any:
    """Wait until ``check()`` returns something true; return it."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return result


def add_account(hass_process: HomeAssistantProcess, fake: FakeMisskeyThread) -> Any:
    """Add the fake Misskey's account over the REST API; Allow on the server."""
    flows = "/api/config/config_entries/flow"
    step = hass_process.api("POST", flows, {"handler": "misskey"})
    step = hass_process.api("POST", f"{flows}/{step['flow_id']}", {"url": fake.url})
    assert step["step_id"] == "authorize", step
    token = step["url"].rsplit("/", 1)[1]
    fake.call(lambda server: server.accept_session(token), fake.server)

    def done() -> Any:
        result = hass_process.api("POST", f"{flows}/{step['flow_id']}")
        return result if result["type"] == "create_entry" else None

    return until("the entry", done)["result"]


# --- the browser -----------------------------------------------------------


def find_chromium() -> str:
    """Return the path of a system Chromium (or Chrome) binary."""
    if path := os.environ.get("MISSKEY_HA_CHROMIUM"):
        return path
    # Debian's /usr/bin/chromium is a shell wrapper; the binary behind it is
    # what Playwright should start.
    for path in ("/usr/lib/chromium/chromium",):
        if os.access(path, os.X_OK):
            return path
    for name in (
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ):
        if found := shutil.which(name):
            return found
    raise FileNotFoundError(
        "No Chromium found: install Debian's chromium package (scripts/e2e does "
        "that in the sid root) or set MISSKEY_HA_CHROMIUM to a Chromium binary"
    )


def launch_browser(playwright: Playwright) -> Browser:
    """Start headless Chromium with a fresh profile."""
    return playwright.chromium.launch(
        executable_path=find_chromium(),
        headless=True,
        args=CHROMIUM_ARGS,
    )


def login(page: Page, base_url: str, username: str, password: str) -> None:
    """Log in through Home Assistant's own login page.

    The frontend shows the login form (its /auth/authorize page) without changing
    the address from /, so wait for the form itself rather than for a URL.
    """
    page.goto(f"{base_url}/", wait_until="domcontentloaded")
    # Playwright's CSS locators pierce the frontend's shadow roots.
    username_field = page.locator("input[name='username']")
    username_field.fill(username, timeout=30_000)
    page.locator("input[name='password']").fill(password)
    page.locator("input[name='password']").press("Enter")
    # Logged in: the app shell with its sidebar replaces the login form.
    page.locator("ha-sidebar").wait_for(state="attached", timeout=30_000)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot to e2e-artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# Where doc_screenshot also writes: MISSKEY_HA_SCREENSHOTS=docs (relative to the
# checkout) regenerates the README's pictures in docs/.
SCREENSHOTS_ENV = "MISSKEY_HA_SCREENSHOTS"


def doc_screenshot(page: Page, name: str) -> Path:
    """Save what the viewport shows to e2e-artifacts/NAME.png, and to the docs.

    The docs copy goes to $MISSKEY_HA_SCREENSHOTS/NAME.png when that is set.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    if target := os.environ.get(SCREENSHOTS_ENV):
        folder = REPO / target
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / f"{name}.png")
    return path


# --- a fake Misskey ----------------------------------------------------------


class FakeMisskeyThread:
    """tests.misskey_server.MisskeyServer on 127.0.0.1, in its own event loop thread.

    The browser talks to it (the authorization page), and so does Home Assistant's
    process; the test reads its state through `call`.
    """

    def __init__(self) -> None:
        """Prepare; start() starts the thread and the server."""
        import threading  # noqa: PLC0415

        from tests.misskey_server import MisskeyServer  # noqa: PLC0415

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-misskey", daemon=True
        )
        self.server = MisskeyServer()
        self.url = ""

    def start(self) -> str:
        """Run the server; return its URL."""
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(
            self.server.start(), self._loop
        ).result(30)
        return self.url

    def call(self, func: Any, *args: Any) -> Any:
        """Run func(*args) in the server's loop (its state is not thread-safe)."""

        async def run() -> Any:
            return func(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def stop(self) -> None:
        """Stop the server and the thread."""
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
