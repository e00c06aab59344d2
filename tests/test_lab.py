"""The third way the course is used: JupyterLab with jupytext's pairing active.

Starts `jupyter lab --no-browser` on 127.0.0.1 with a token (as `make lab` does,
minus the browser), asks its contents API for a chapter's `.py` twin and gets a
notebook with the chapter's cells, runs the chapter's first code cell in a kernel
over the kernel's websocket, and shuts the server down.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jupytext
import pytest

requests = pytest.importorskip("requests")
websocket = pytest.importorskip("websocket", reason="websocket-client comes with jupyter_server")

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "notebooks/01_search_space.py"
LAB = Path(sys.executable).parent / "jupyter-lab"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not LAB.exists():
        pytest.skip("JupyterLab is not installed in this environment (make install installs it)")
    token, port = secrets.token_hex(16), _free_port()
    home = tmp_path_factory.mktemp("lab-home")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_DATA_DIR=str(home / "data"))
    env.pop("MPLBACKEND", None)
    log = (home / "lab.log").open("w")
    proc = subprocess.Popen(
        [str(LAB), "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={ROOT}", "--ServerApp.port_retries=0",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited: {(home / 'lab.log').read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/api/status", headers=headers, timeout=2).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jupyter lab did not answer within 90 s")
    yield base, headers, token
    try:
        requests.post(f"{base}/api/shutdown", headers=headers, timeout=10)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def test_lab_opens_a_py_twin_as_the_chapter_notebook(lab):
    base, headers, _ = lab
    reply = requests.get(f"{base}/api/contents/{CHAPTER}", headers=headers, params={"type": "notebook"},
                         timeout=30)
    assert reply.status_code == 200, reply.text[:500]
    model = reply.json()
    assert model["type"] == "notebook", "jupytext's contents manager should serve the .py as a notebook"
    served = [(c["cell_type"], "".join(c["source"]).strip()) for c in model["content"]["cells"]]
    expected = [(c.cell_type, c.source.strip()) for c in jupytext.read(ROOT / CHAPTER).cells]
    assert served == expected


def test_a_kernel_runs_the_chapters_first_code_cell(lab):
    base, headers, token = lab
    first_code = next(c.source for c in jupytext.read(ROOT / CHAPTER).cells if c.cell_type == "code")
    kernel = requests.post(f"{base}/api/kernels", headers=headers, json={"name": "python3"}, timeout=60).json()
    ws_url = base.replace("http", "ws") + f"/api/kernels/{kernel['id']}/channels?token={token}"
    conn = websocket.create_connection(ws_url, timeout=120)
    try:
        msg_id = uuid.uuid4().hex
        conn.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": first_code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        reply = None
        deadline = time.monotonic() + 120
        while reply is None and time.monotonic() < deadline:
            msg = json.loads(conn.recv())
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "execute_reply":
                reply = msg["content"]
        assert reply is not None, "no execute_reply within 120 s"
        assert reply["status"] == "ok", reply
    finally:
        conn.close()
        requests.delete(f"{base}/api/kernels/{kernel['id']}", headers=headers, timeout=30)
