"""A fault-injecting HTTP proxy in front of an OpenAI-compatible server, run as its own process.

    python tests/api_proxy.py --upstream http://127.0.0.1:PORT --port 0 --port-file FILE

It forwards every request unchanged unless told otherwise through its control endpoint:
POST /_control {"queue": [...], "rules": {...}, "clear_log": true}. Each queued fault applies to
one upstream request, in order:
    "500"          answer 500 with a JSON error body
    "429:S"        answer 429 with `Retry-After: S`
    "hang:S"       read the request, wait S seconds, close the connection without answering
    "truncate"     forward, then return the first half of the upstream JSON body
    "nochoices"    answer 200 with valid JSON that has no `choices`
    "401echo"      answer 401 echoing the bearer token in the message (as some servers do)
    "nologprobs"   forward, then drop `logprobs` from every choice (a server without --logits_all)
    "badlogprobs"  forward, then make one token log-probability the text "nan?"
    "shortlogprobs" forward, then drop the last entry of `token_logprobs` (lists of unequal length)
Rules apply to every request: {"dead_max_tokens": N} answers 503 to each request whose
`max_tokens` is N (a backend that is down for some requests only); {"chat_only": true} answers
/completions with 404 and OpenAI's "This is a chat model" message; {"honour_n": true} answers
a request with n>1 by sending n upstream requests (seed, seed+1, ...) and merging their choices,
like a server that honours n (llama.cpp does not). GET /_log lists what it saw
(path, body fields, the fault applied, a hash of the Authorization header).

It exits when its parent process dies or after --max-seconds, so a killed test run leaves nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATE: dict[str, Any] = {"queue": [], "rules": {}, "log": []}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    """Forwards to the upstream server, injecting the configured faults."""

    upstream = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads /_log instead."""

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _error(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        err = {"error": {"message": message, "type": "proxy_fault", "code": code}}
        self._send(code, json.dumps(err).encode(), headers)

    def do_GET(self) -> None:
        """The log, or a forwarded GET (e.g. /v1/models)."""
        if self.path == "/_log":
            with LOCK:
                self._send(200, json.dumps(STATE["log"]).encode())
            return
        self._forward(b"")

    def do_POST(self) -> None:
        """Control requests, or a forwarded API call with an optional fault."""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_control":
            cmd = json.loads(body or b"{}")
            with LOCK:
                if "queue" in cmd:
                    STATE["queue"] = list(cmd["queue"])
                if "rules" in cmd:
                    STATE["rules"] = dict(cmd["rules"])
                if cmd.get("clear_log"):
                    STATE["log"] = []
            self._send(200, b"{}")
            return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        try:
            fields = json.loads(body) if body else {}
        except ValueError:
            fields = {}
        auth = self.headers.get("Authorization") or ""
        with LOCK:
            rules = dict(STATE["rules"])
            fault = None
            if (
                rules.get("dead_max_tokens") is not None
                and fields.get("max_tokens") == rules["dead_max_tokens"]
            ):
                fault = "dead"
            elif rules.get("chat_only") and self.path.endswith("/completions") and "/chat/" not in self.path:
                fault = "chat_only"
            elif STATE["queue"] and self.command == "POST":
                fault = STATE["queue"].pop(0)
            STATE["log"].append(
                {
                    "path": self.path,
                    "fault": fault,
                    "n": fields.get("n"),
                    "seed": fields.get("seed"),
                    "max_tokens": fields.get("max_tokens"),
                    "stop": fields.get("stop"),
                    "min_tokens": fields.get("min_tokens"),
                    "auth_sha256": hashlib.sha256(auth.encode()).hexdigest(),
                    "time": time.time(),
                }
            )
        if fault == "dead":
            self._error(503, "backend unavailable (injected)")
        elif fault == "chat_only":
            self._error(
                404,
                "This is a chat model and not supported in the v1/completions endpoint. "
                "Did you mean to use v1/chat/completions?",
            )
        elif fault == "500":
            self._error(500, "internal error (injected)")
        elif fault and fault.startswith("429"):
            wait = fault.split(":", 1)[1] if ":" in fault else "1"
            self._error(429, "rate limited (injected)", {"Retry-After": wait})
        elif fault and fault.startswith("hang"):
            time.sleep(float(fault.split(":", 1)[1]) if ":" in fault else 30.0)
            self.close_connection = True
        elif fault == "401echo":
            self._error(401, f"Incorrect API key provided: {auth.removeprefix('Bearer ')}")
        elif fault == "nochoices":
            self._send(200, json.dumps({"id": "x", "object": "text_completion", "usage": None}).encode())
        elif rules.get("honour_n") and (fields.get("n") or 1) > 1:
            self._merge_n(fields)
        else:
            code, data, headers = self._upstream(body)
            if fault == "truncate":
                data = data[: len(data) // 2]
            elif fault in ("nologprobs", "badlogprobs", "shortlogprobs") and code == 200:
                data = _spoil_logprobs(data, fault)
            self._send(code, data, headers)

    def _merge_n(self, fields: dict[str, Any]) -> None:
        """Answer n>1 with n upstream requests, choices re-indexed and usage summed."""
        merged: dict[str, Any] = {}
        choices = []
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for i in range(fields["n"]):
            one = {**fields, "n": 1}
            if one.get("seed") is not None:
                one["seed"] = one["seed"] + i
            code, data, _ = self._upstream(json.dumps(one).encode())
            if code != 200:
                self._send(code, data)
                return
            reply = json.loads(data)
            merged = merged or reply
            for c in reply["choices"]:
                choices.append({**c, "index": len(choices)})
            for k in usage:
                usage[k] += reply["usage"][k]
        merged.update(choices=choices, usage=usage)
        self._send(200, json.dumps(merged).encode())

    def _upstream(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        req = urllib.request.Request(
            self.upstream + self.path,
            data=body if self.command == "POST" else None,
            method=self.command,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                return resp.status, resp.read(), {}
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), {}
        except OSError as exc:
            return 502, json.dumps({"error": {"message": f"upstream: {exc}"}}).encode(), {}


def _spoil_logprobs(data: bytes, fault: str) -> bytes:
    """A reply whose log-probabilities are missing or malformed, the rest intact."""
    reply = json.loads(data)
    for choice in reply.get("choices", []):
        lp = choice.get("logprobs") or {}
        if fault == "nologprobs":
            choice["logprobs"] = None
        elif fault == "badlogprobs" and lp.get("token_logprobs"):
            lp["token_logprobs"][-2] = "nan?"
        elif fault == "shortlogprobs" and lp.get("token_logprobs"):
            lp["token_logprobs"].pop()
    return json.dumps(reply).encode()


def _watch_parent(parent: int, deadline: float) -> None:
    """Exit when the process that started us is gone, or at the deadline."""
    while time.time() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    """Parse arguments, bind 127.0.0.1, write the port, serve."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=3600)
    args = ap.parse_args()
    Handler.upstream = args.upstream.rstrip("/")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(
        target=_watch_parent, args=(os.getppid(), time.time() + args.max_seconds), daemon=True
    ).start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)  # the test polls for this file; never let it see half a number
    server.serve_forever()


if __name__ == "__main__":
    main()
