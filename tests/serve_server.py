"""Start the real service (python -m w2s_app serve) on a free port, for the API tests and the benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.db import free_port

ROOT = Path(__file__).resolve().parents[1]


class ServeServer:
    """A running `serve` process on 127.0.0.1; stops on close."""

    def __init__(
        self, presets_file: Path | None, data_dir: Path, *args: str, preset: str = "tiny", **env: str
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.data_dir = data_dir
        self.log = data_dir / "serve.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "W2S_PRESET": preset,
            "W2S_DATA_DIR": str(data_dir),
            "W2S_DEVICE": "cpu",
            "HF_HUB_OFFLINE": "1",
            **env,
        }
        if "W2S_SERVE_KEY" not in env:
            full_env.pop("W2S_SERVE_KEY", None)  # a key in the caller's environment must not leak in
        if presets_file is not None:
            full_env["W2S_PRESETS"] = str(presets_file)
        cmd = [sys.executable, "-m", "w2s_app", "serve", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=full_env, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"serve did not start in 120 s: {self.log.read_text()[-3000:]}")

    def health(self) -> dict:
        """The queue state the server reports."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as resp:
            return json.loads(resp.read())

    @property
    def db(self) -> Path:
        """The server's SQLite file."""
        return self.data_dir / "w2s.sqlite3"

    def stop(self) -> None:
        """Terminate the server."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
