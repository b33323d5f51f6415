"""Cost of the OpenAI-compatible service over the same search run directly through the Runner.

Both paths run in this process over one Runner (one model pool, one store), so the difference is
the service's own work: HTTP, JSON, the queue, the worker thread, token counting.
- one request, warm: the fastest of --repeat runs of each, interleaved (target: under 5 % added);
- throughput: --clients concurrent clients each sending --per-client requests (the model queue runs
  one search at a time, so the ceiling is the direct sequential rate).

    python -m benchmarks.bench_serve                     # tiny random models (~1 minute idle)
    python -m benchmarks.bench_serve --models offline    # the real offline preset (several minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the benchmark never downloads anything
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai
import torch
import uvicorn

from tests.tiny_models import tiny_presets_toml, tiny_set
from w2s_app.config import Settings
from w2s_app.runner import CompareRequest
from w2s_app.serve import build_api
from w2s_app.wiring import Services, build_services

PROMPT = "Give three tips for staying healthy."


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(services: Services) -> tuple[uvicorn.Server, str]:
    """The service on a free loopback port, in a background thread of this process."""
    port = free_port()
    config = uvicorn.Config(build_api(services), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/v1"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the two measurements and print them."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", choices=("tiny", "offline"), default="tiny")
    ap.add_argument("--method", default="w2s")
    ap.add_argument("--max-tokens", type=int, default=None, help="default: 64 (tiny), 32 (offline)")
    ap.add_argument(
        "--temperature", type=float, default=None, help="default: 1.5 (tiny: longer answers), 0.7"
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--per-client", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    # The service runs searches in worker threads, the direct path in this one: one torch thread each
    # keeps OpenMP's spinning (which stalls badly on a busy machine) from favouring either path.
    torch.set_num_threads(args.threads)
    tiny = args.models == "tiny"
    max_tokens = args.max_tokens or (64 if tiny else 32)
    temperature = args.temperature if args.temperature is not None else (1.5 if tiny else 0.7)
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = {"W2S_DATA_DIR": str(tmp / "data"), "W2S_DEVICE": os.environ.get("W2S_DEVICE", "cpu")}
    preset = "tiny" if tiny else "offline"
    if tiny:
        (tmp / "presets.toml").write_text(tiny_presets_toml(tiny_set()))
        env["W2S_PRESETS"] = str(tmp / "presets.toml")
    env["W2S_MAX_QUEUE"] = str(max(args.clients, 1))  # every concurrent client may wait its turn
    env["W2S_MAX_COST"] = env["W2S_REQUEST_SECONDS"] = "0"  # the benchmark measures, it is not a public arena
    services = build_services(Settings.from_env(env))
    runner = services.runner
    server, base_url = start_server(services)
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=3600)
    model = f"{preset}/{args.method}"

    def direct(seed: int, method: str = args.method, tokens: int = max_tokens) -> float:
        # In a fresh thread, as the service runs each search (torch behaves differently in the main one).
        settings = {"max_new_tokens": tokens, "temperature": temperature, "seed": seed}
        request = CompareRequest(PROMPT, preset, [method], settings)
        worker = threading.Thread(target=runner.compare, args=(request,))
        start = time.perf_counter()
        worker.start()
        worker.join()
        return time.perf_counter() - start

    def served(seed: int, stream: bool = False, method: str = args.method, tokens: int = max_tokens) -> float:
        start = time.perf_counter()
        out = client.completions.create(
            model=f"{preset}/{method}",
            prompt=PROMPT,
            max_tokens=tokens,
            temperature=temperature,
            seed=seed,
            stream=stream,
        )
        if stream:
            for _ in out:
                pass
        return time.perf_counter() - start

    direct(0), served(0), served(0, True)  # warm: models loaded, caches and connections made
    times: dict[str, list[float]] = {"direct": [], "service": [], "stream": []}
    for _ in range(args.repeat):  # interleaved, so drift in the shared machine's load hits all three
        times["direct"].append(direct(0))
        times["service"].append(served(0))
        times["stream"].append(served(0, True))
    best = {k: min(v) for k, v in times.items()}
    # The service's fixed cost per request, on the smallest search there is (one baseline token).
    fixed: dict[str, list[float]] = {"direct": [], "service": []}
    for _ in range(15):
        fixed["direct"].append(direct(0, "baseline", 1))
        fixed["service"].append(served(0, False, "baseline", 1))
    fixed_ms = {k: 1000 * statistics.median(v) for k, v in fixed.items()}

    seeds = list(range(1, 1 + args.clients * args.per_client))

    def rate(run: Any) -> float:
        start = time.perf_counter()
        run()
        return len(seeds) / (time.perf_counter() - start)

    def concurrently() -> None:
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(served, seeds))

    blocks = {
        "direct": lambda: [direct(seed) for seed in seeds],
        "one_client": lambda: [served(seed) for seed in seeds],
        "concurrent": concurrently,
    }
    rates: dict[str, list[float]] = {k: [] for k in blocks}
    for order in (list(blocks), list(blocks)[::-1]):  # forward then backward: load drift hits all alike
        for name in order:
            rates[name].append(rate(blocks[name]))
    sequential, one_client, concurrent = (max(rates[k]) for k in blocks)
    server.should_exit = True

    out = {
        "models": args.models,
        "model": model,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "one_request_seconds": {k: round(v, 4) for k, v in best.items()},
        "added_latency_pct": round(100 * (best["service"] / best["direct"] - 1), 2),
        "added_latency_stream_pct": round(100 * (best["stream"] / best["direct"] - 1), 2),
        "fixed_cost_ms": {k: round(v, 2) for k, v in fixed_ms.items()},
        "requests": len(seeds),
        "clients": args.clients,
        "direct_sequential_rps": round(sequential, 3),
        "service_one_client_rps": round(one_client, 3),
        "service_concurrent_rps": round(concurrent, 3),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{model}, max_tokens={max_tokens}, T={temperature}: one request, warm (best of {args.repeat}): "
            f"runner {best['direct']:.3f} s, service {best['service']:.3f} s "
            f"({out['added_latency_pct']:+.1f} %), streamed {best['stream']:.3f} s "
            f"({out['added_latency_stream_pct']:+.1f} %)"
        )
        print(
            f"fixed cost (baseline, 1 token, median of 15): runner {fixed_ms['direct']:.1f} ms, "
            f"service {fixed_ms['service']:.1f} ms ({fixed_ms['service'] - fixed_ms['direct']:+.1f} ms)"
        )
        print(
            f"throughput, {len(seeds)} requests: runner sequential {sequential:.2f} req/s; service, one client "
            f"{one_client:.2f} req/s; {args.clients} concurrent clients {concurrent:.2f} req/s "
            f"({concurrent / sequential:.2f}x the runner)"
        )
    return out


if __name__ == "__main__":
    main()
