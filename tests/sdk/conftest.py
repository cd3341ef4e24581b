"""Starts the real mock provider and a real `keyward serve` for the SDK compatibility suite.

Binaries come from KEYWARD_BIN and KEYWARD_MOCK_BIN (scripts/test.sh builds them). Keyward
runs on the zero-config SQLite store in a temporary directory; the tests read its ledger
rows straight from that file.
"""

import json
import os
import queue
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid

import pytest

ADMIN_TOKEN = "sdk-suite-operator-token-" + uuid.uuid4().hex


def _start(argv, env, cwd, ready):
    """Starts a process and waits for the stdout line `ready` accepts; returns (proc, value)."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}")
            continue
        value = ready(line)
        if value:
            return proc, value
    proc.kill()
    raise RuntimeError(f"{argv[0]} did not start")


def _json_line(line):
    try:
        return json.loads(line)
    except ValueError:
        return {}


class Gateway:
    def __init__(self, url, data_dir, mock_url):
        self.url = url
        self.data_dir = data_dir
        self.mock_url = mock_url

    def admin(self, method, path, body=None):
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read() or b"null")

    def mock_calls(self):
        with urllib.request.urlopen(self.mock_url + "/_mock/calls") as response:
            return json.loads(response.read())

    def ledger(self, request_id):
        """The ledger row of a call, once it is no longer pending."""
        deadline = time.monotonic() + 10
        while True:
            with sqlite3.connect(f"file:{self.data_dir}/keyward-data/keyward.db?mode=ro", uri=True) as db:
                db.row_factory = sqlite3.Row
                row = db.execute("SELECT * FROM ledger WHERE request_id = ?", (request_id,)).fetchone()
            if row is not None and (row["status"] != "pending" or time.monotonic() > deadline):
                return dict(row)
            time.sleep(0.02)


@pytest.fixture(scope="session")
def gateway():
    keyward_bin = os.path.abspath(os.environ["KEYWARD_BIN"])
    mock_bin = os.path.abspath(os.environ["KEYWARD_MOCK_BIN"])
    data_dir = tempfile.mkdtemp(prefix="keyward-sdk-")
    base_env = {name: value for name, value in os.environ.items() if not name.startswith("KEYWARD_")}
    mock, mock_address = _start([mock_bin, "--listen", "127.0.0.1:0"], base_env, data_dir, lambda line: _json_line(line).get("listening"))
    env = dict(base_env)
    env.update({
        "KEYWARD_SERVER_LISTEN": "127.0.0.1:0",
        "KEYWARD_ADMIN_TOKEN": ADMIN_TOKEN,
        "KEYWARD_EGRESS_ALLOW_PRIVATE": "127.0.0.1",
    })

    def listening(line):
        entry = _json_line(line)
        return entry.get("address") if entry.get("message") == "keyward listening" else None

    server, address = _start([keyward_bin, "serve"], env, data_dir, listening)
    try:
        yield Gateway(f"http://{address}", data_dir, f"http://{mock_address}")
    finally:
        server.terminate()
        assert server.wait(timeout=15) == 0, "keyward must exit 0 on SIGTERM"
        mock.kill()
        mock.wait()


@pytest.fixture(scope="session")
def tenant(gateway):
    """A tenant with an OpenAI and an Anthropic credential on the mock, and a member key."""
    created = gateway.admin("POST", "/admin/v1/tenants", {"name": "sdk-" + uuid.uuid4().hex[:8]})
    tenant_id = created["id"]
    secrets = {"openai": "sk-sdk-openai-" + uuid.uuid4().hex, "anthropic": "sk-ant-sdk-" + uuid.uuid4().hex}
    gateway.admin("POST", f"/admin/v1/tenants/{tenant_id}/credentials", {
        "provider": "openai", "label": "team-openai", "secret": secrets["openai"], "base_url": gateway.mock_url + "/v1"})
    gateway.admin("POST", f"/admin/v1/tenants/{tenant_id}/credentials", {
        "provider": "anthropic", "label": "claude", "secret": secrets["anthropic"], "base_url": gateway.mock_url})
    key = gateway.admin("POST", f"/admin/v1/tenants/{tenant_id}/keys", {"role": "member"})["key"]
    return {"id": tenant_id, "key": key, "secrets": secrets}
