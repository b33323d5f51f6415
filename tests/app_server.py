"""Start the real app (python app.py) on 127.0.0.1 with the tiny presets, for API and browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.db import free_port

ROOT = Path(__file__).resolve().parents[1]


class AppServer:
    """A running app process; stops on close."""

    def __init__(self, presets_file: Path, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.data_dir = data_dir
        self.log = data_dir / "app.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {
            **os.environ,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "W2S_PRESETS": str(presets_file),
            "W2S_PRESET": "tiny",
            "W2S_DATA_DIR": str(data_dir),
            "W2S_DEVICE": "cpu",
            "HF_HUB_OFFLINE": "1",
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=ROOT,
            env=full_env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app did not start in 120 s: {self.log.read_text()[-3000:]}")

    @property
    def db(self) -> Path:
        """The app's SQLite file."""
        return self.data_dir / "w2s.sqlite3"

    def stop(self) -> None:
        """Terminate the app."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
