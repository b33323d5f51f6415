"""Command line: generate, batch, export, leaderboard, tune-guide, evaluate, prepare, serve."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from . import batch_file, judge, options
from .backends.local import ModelLoadError
from .config import ENGINE_NAMES, PRECISIONS, ConfigError, Settings
from .errors import RequestError
from .judge import add_agreement_parser, add_judge_parser
from .leaderboard import add_source_argument, board_json, board_text, resolve_source
from .leaderboard.views import BY_NAME as VIEW_FIELDS
from .leaderboard.views import parse_view
from .runner import CompareRequest, ComparisonResult
from .store.judgements import parse_source
from .wiring import Services, build_services, startup_message

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """An error to print without a traceback, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments print one line (not the whole usage) and exit 2."""

    def error(self, message: str) -> Any:
        """Print one line and exit 2 (argparse calls this on bad arguments)."""
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by generate, batch and evaluate: every comparison setting (options.py), and the
    engine, precision and server."""
    p.add_argument("--preset", default=None, help="preset name (default: W2S_PRESET or 'sentiment-positive')")
    p.add_argument("--methods", default="baseline,bon,w2s", help="comma-separated: baseline,bon,w2s,eft")
    for o in options.ALL:
        # Values are checked by options.validate (not argparse), so the message is every surface's.
        bounds = o.bounds_text()
        p.add_argument(
            "--" + o.surface_name("cli").replace("_", "-"),
            dest=o.name,
            default=None,
            metavar=o.name.upper(),
            help=f"{o.help} ({bounds}; default: the preset's, else {o.default})",
        )
    p.add_argument("--engine", default=None, help=f"sampler of a local strong model: {', '.join(ENGINE_NAMES)} "
                   "(default: W2S_ENGINE)")  # fmt: skip
    p.add_argument(
        "--dtype",
        choices=PRECISIONS,
        default=None,
        help="precision of local transformers models (default: W2S_DTYPE, else auto)",
    )
    p.add_argument("--api-base", default=None, help="OpenAI-compatible server URL (default: OPENAI_BASE_URL)")
    p.add_argument("--api-model", default=None, help="model name on that server (default: W2S_API_MODEL)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = OneLineParser(prog="python -m w2s_app", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    gen = sub.add_parser("generate", help="answer one prompt with several methods")
    gen.add_argument("--prompt", required=True)
    _add_run_options(gen)
    gen.add_argument("--json", action="store_true", help="print JSON instead of text")
    gen.add_argument("--trace", action="store_true", help="include the search trace in --json output")

    bat = sub.add_parser("batch", help="answer every prompt of a JSONL file; resumes where it stopped")
    bat.add_argument("--input", required=True, type=Path, help="JSONL with 'instruction' or 'prompt'")
    bat.add_argument("--output", required=True, type=Path, help="JSONL written as it goes")
    bat.add_argument("--format", choices=["full", "alpaca_eval"], default="full")
    bat.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    _add_run_options(bat)

    exp = sub.add_parser("export", help="write comparisons, generations, votes or judgements to a file")
    exp.add_argument("--what", choices=["comparisons", "generations", "votes", "judgements"], required=True)
    exp.add_argument("--format", choices=["csv", "jsonl", "parquet"], required=True)
    exp.add_argument("--out", required=True, type=Path)
    exp.add_argument(
        "--source",
        default="humans",
        help="whose votes an export of votes holds: humans (default), judge:<model>, humans+judge:<model>, all",
    )

    lb = sub.add_parser(
        "leaderboard", help="Bradley-Terry leaderboard from blind votes (people's by default)"
    )
    lb.add_argument("--preset", default=None, help="only comparisons of this preset")
    lb.add_argument("--json", action="store_true")
    add_source_argument(lb)
    lb.add_argument(
        "--style-control", action="store_true", help="strengths net of answer length and markdown"
    )
    lb.add_argument("--min-vote-seconds", default="0", help=VIEW_FIELDS["min_vote_seconds"].help)
    lb.add_argument(
        "--drop-one-position", action="store_true", help="drop voters whose picks are all one position"
    )
    lb.add_argument(
        "--drop-followers",
        action="store_true",
        help="drop voters whose picks follow one method far above chance, voting fast",
    )

    tune = sub.add_parser("tune-guide", help="DPO-tune a LoRA adapter: the tuned side of a guide pair")
    tune.add_argument(
        "--base", required=True, help="model source of the small guide (hub id, folder, pip:...)"
    )
    tune.add_argument("--out", required=True, type=Path, help="folder for the adapter and metadata.json")
    tune.add_argument("--reward", help="vader, vader-positive, vader-negative, or module:function")
    tune.add_argument("--prompts", type=Path, help="one prompt per line (with --reward)")
    tune.add_argument("--samples", type=int, default=4, help="answers sampled per prompt (with --reward)")
    tune.add_argument(
        "--sample-from",
        default=None,
        help="with --reward: model whose answers are ranked (default: --base); e.g. the strong model to steer",
    )
    tune.add_argument(
        "--stop",
        action="append",
        default=[],
        help="with --reward: text that ends a sampled answer (repeatable)",
    )
    tune.add_argument("--preferences", type=Path, help="JSONL with prompt, chosen, rejected")
    tune.add_argument("--from-votes", action="store_true", help="pairs from the database's blind votes")
    tune.add_argument("--preset", default=None, help="with --from-votes: only this preset's comparisons")
    tune.add_argument("--template", default="chat", help="'chat' or plain text with {prompt}")
    tune.add_argument("--eos", default=None, help="token that ends an answer (default: the tokenizer's EOS)")
    tune.add_argument("--epochs", type=int, default=1)
    tune.add_argument("--batch-size", type=int, default=8)
    tune.add_argument("--beta", type=float, default=0.1)
    tune.add_argument("--lr", type=float, default=5e-4)
    tune.add_argument("--max-tokens", type=int, default=64, help="answer tokens used per pair")
    tune.add_argument("--rank", type=int, default=8, help="LoRA rank")
    tune.add_argument(
        "--lora-layers", choices=("attention", "all-linear"), default="attention", help="where LoRA goes"
    )
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--device", default=None)

    ev = sub.add_parser("evaluate", help="mean gold reward per method over prompts and seeds")
    ev.add_argument("--prompts", required=True, type=Path, help="one prompt per line")
    ev.add_argument(
        "--reward", required=True, help="vader, vader-positive, vader-negative, or module:function"
    )
    ev.add_argument("--seeds", type=int, default=1, help="seeds per prompt")
    ev.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    ev.add_argument("--json", action="store_true")
    _add_run_options(ev)

    prep = sub.add_parser(
        "prepare",
        help="load a preset's models ahead of time (the transformers engine also converts GGUF weights)",
    )
    prep.add_argument("--preset", default=None)

    add_judge_parser(sub)  # judge/command.py declares its own options
    add_agreement_parser(sub)

    srv = sub.add_parser("serve", help="OpenAI-compatible API: every preset x method is a model")
    srv.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--with-app", action="store_true", help="also serve the Gradio page at / (one queue)")
    return parser


def _settings_dict(args: argparse.Namespace) -> dict[str, Any]:
    """Every comparison setting given on the command line, by option name (None: not given)."""
    return {o.name: getattr(args, o.name) for o in options.ALL}


def _methods(args: argparse.Namespace) -> list[str]:
    return [m.strip() for m in args.methods.split(",") if m.strip()]


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, with the command line's engine, precision and server."""
    from dataclasses import replace

    settings = Settings.from_env()
    if args.engine:
        if args.engine not in ENGINE_NAMES:
            raise CliError(f"unknown engine {args.engine!r}; choose from {', '.join(ENGINE_NAMES)}")
        settings = replace(settings, engine=args.engine)
    if args.dtype:
        settings = replace(settings, dtype=args.dtype)
    # The API server and model may come from flags; the key only from OPENAI_API_KEY (never argv).
    if args.api_base:
        settings = replace(settings, api_base=args.api_base)
    if args.api_model:
        settings = replace(settings, api_model=args.api_model)
    return settings


def _services(args: argparse.Namespace) -> Services:
    """The process's services (wiring.build_services): every comparison the CLI runs is stored."""
    return build_services(_settings(args))


def _request(args: argparse.Namespace, prompt: str, **settings: Any) -> CompareRequest:
    """A comparison request from the command line (no request limits: the operator runs it)."""
    return CompareRequest(prompt, args.preset, _methods(args), {**_settings_dict(args), **settings})


def _result_rows(comp: ComparisonResult, trace: bool) -> list[dict[str, Any]]:
    rows = []
    for r in comp.results:
        d = r.to_dict()
        if not trace:
            d.pop("trace")
        rows.append(d)
    return rows


def cmd_generate(args: argparse.Namespace) -> int:
    """Answer one prompt and print each method's result."""
    services = _services(args)
    comp = services.runner.compare(_request(args, args.prompt))
    if args.json:
        out = {
            "comparison_id": comp.id,
            "prompt": comp.prompt,
            "preset": comp.preset,
            "models": comp.models,
            "sampling": vars(comp.sampling),
            "seconds": round(comp.seconds, 3),
            "load_seconds": round(comp.load_seconds, 3),
            "results": _result_rows(comp, args.trace),
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        for r in comp.results:
            score = "" if r.score is None else f" score={r.score:.3f}"
            print(f"=== {r.label}{score} tokens={r.counts.strong_tokens} seconds={r.seconds:.1f}")
            print((r.error and f"ERROR: {r.error}") or r.text.strip())
            print()
    return 0 if all(r.ok for r in comp.results) else 1


def cmd_batch(args: argparse.Namespace) -> int:
    """Run every prompt of a file, appending results; rerun to resume."""
    from tqdm import tqdm

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    try:
        prompts = batch_file.read_prompts(args.input)[: args.limit]
        done = batch_file.done_indices(args.output, args.format)
    except batch_file.BatchFileError as exc:
        raise CliError(str(exc)) from exc
    todo = [p for p in prompts if p["index"] not in done]
    services = _services(args)
    runner = services.runner
    # Validate every setting once before the long run starts (the first prompt stands for all).
    if prompts:
        runner.plan(_request(args, prompts[0]["prompt"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    with (
        args.output.open("a", encoding="utf-8") as fh,
        tqdm(total=len(prompts), initial=len(prompts) - len(todo), desc="prompts", unit="prompt") as bar,
    ):
        for item in todo:
            comp = runner.compare(_request(args, item["prompt"]))
            failures += sum(not r.ok for r in comp.results)
            lines = batch_file.result_lines(args.format, item, comp, _result_rows(comp, trace=True))
            # One write per prompt, so an interrupted run leaves whole prompts or a torn last line.
            fh.write("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
            fh.flush()
            bar.update(1)
    if args.format == "alpaca_eval":
        batch_file.write_alpaca_json(args.output)
    print(f"wrote {args.output} ({len(prompts)} prompts, {len(todo)} new, {failures} failed answers)")
    return 0 if failures == 0 else 1


def cmd_export(args: argparse.Namespace) -> int:
    """Export one table (voter ids hashed with the deployment's secret salt, as the app's exports)."""
    services = build_services(Settings.from_env())
    store = services.store
    salt = services.identity.export_salt()
    try:
        parse_source(args.source if args.source != "all" else "humans")
        path = store.export(args.what, args.format, args.out, salt=salt, source=args.source)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(f"wrote {store.count(args.what)} {args.what} to {path}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Print the leaderboard of one source (people's by default) as a table or JSON."""
    services = build_services(Settings.from_env())
    preset = services.runner.preset(args.preset).name if args.preset else ""  # unknown: an error
    try:
        source = resolve_source(args.source, services.store.judges(preset or None))
        given = {"preset": preset, "source": source, "min_vote_seconds": args.min_vote_seconds,
                 "style_control": args.style_control, "drop_one_position": args.drop_one_position,
                 "drop_followers": args.drop_followers}  # fmt: skip
        view = parse_view(given, lambda name: name)  # the same reading as the page and the JSON route
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    board = services.board.get(view)  # the deployment's voter cap applies, as on the page
    print(
        json.dumps(board_json(board, args.preset), indent=2) if args.json else board_text(board, args.preset)
    )
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    """Judge a preset's stored comparisons with a model on an OpenAI-compatible server."""
    settings = Settings.from_env()
    return judge.cmd_judge(args, settings, build_services(settings).store)


def cmd_agreement(args: argparse.Namespace) -> int:
    """How often a judge agrees with people."""
    settings = Settings.from_env()
    return judge.cmd_agreement(args, settings, build_services(settings).store)


def cmd_tune_guide(args: argparse.Namespace) -> int:
    """Train a guide adapter from a reward, a preference file or the app's votes."""
    from .tuning.command import tune_guide

    for name in ("samples", "epochs", "batch_size", "max_tokens", "rank"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1")
    try:
        # The store as every process opens it (the composition root), only when --from-votes asks.
        summary = tune_guide(args, lambda: build_services(Settings.from_env()).store)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(summary, indent=2))
    print(f"adapter written to {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run the methods over the prompts (stored like any comparison) and print the reward table."""
    from tqdm import tqdm

    from .evaluate import evaluate
    from .tuning.command import read_prompts
    from .tuning.rewards import load_reward

    if args.seeds < 1:
        raise CliError("--seeds must be at least 1")
    try:
        reward = load_reward(args.reward)
        prompts = read_prompts(args.prompts)[: args.limit]
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    runner = _services(args).runner
    base = _settings_dict(args)
    # Paired evaluation: every method sees the same noise unless asked otherwise (less variance).
    base["noise"] = base["noise"] or "shared"
    first = options.SEED.check(base["seed"]) if base["seed"] is not None else 0
    if prompts:
        runner.plan(_request(args, prompts[0], **base))  # every setting checked before the long run

    def compare(prompt: str, seed: int) -> ComparisonResult:
        return runner.compare(_request(args, prompt, **{**base, "seed": first + seed}))

    with tqdm(total=len(prompts) * args.seeds, desc="answers", unit="prompt") as bar:
        table = evaluate(compare, prompts, args.seeds, reward, progress=lambda: bar.update(1))
    if args.json:
        print(
            json.dumps(
                {"preset": args.preset, "reward": args.reward, "table": table.to_dict(orient="records")}
            )
        )
    else:
        print(table.to_string(index=False))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Load every model of a preset, so the first comparison does not wait for it (llama.cpp reads the
    GGUF files as they are; the transformers engine converts them to its weights once, cached)."""
    services = build_services(Settings.from_env())
    for line in services.engines.prepare(services.runner.preset(args.preset)):
        print(line)  # the source's kind knows what to load
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve /v1/models, /v1/completions and /v1/chat/completions until interrupted."""
    from .serve.command import serve

    if not 0 < args.port < 65536:
        raise CliError("--port must be between 1 and 65535")
    services = build_services(Settings.from_env())
    serve(services, args.host, args.port, page=_page_mount(services) if args.with_app else None)
    return 0


def _page_mount(services: Any) -> Any:
    """`serve --with-app`: mount the Gradio page at / on the service's app, sharing its services."""

    def mount(api: Any, payloads: Any) -> Any:
        import gradio as gr

        from .ui import build_app, launch_kwargs

        page = build_app(services, payloads)
        return gr.mount_gradio_app(api, page, path="/", show_error=False, **launch_kwargs())

    return mount


COMMANDS = {
    "generate": cmd_generate,
    "batch": cmd_batch,
    "prepare": cmd_prepare,
    "tune-guide": cmd_tune_guide,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "leaderboard": cmd_leaderboard,
    "serve": cmd_serve,
    "judge": cmd_judge,
    "agreement": cmd_agreement,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input exits 2 with one line on stderr, never a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return COMMANDS[args.command](args)
    except (CliError, RequestError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "code", EXIT_BAD_INPUT)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        # A data dir or database that cannot be used, a bad environment: one line, as the app says it.
        message = startup_message(exc)
        if message is None:
            raise
        print(f"error: cannot start: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
