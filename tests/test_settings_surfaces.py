"""Every setting is declared once (options.py): the page, the Gradio /compare endpoint, the command line
and the service accept the same settings with the same bounds, and refuse a bad value with the same
message, naming the same field."""

from __future__ import annotations

import os
import subprocess
import sys

import openai
import pytest
from gradio_client import Client

from tests.app_server import ROOT
from tests.db import free_port
from w2s_app import options
from w2s_app.arena import ArenaError, compare
from w2s_app.arena.caller import Caller
from w2s_app.cli import main
from w2s_app.config import Settings
from w2s_app.ui.controls import values_of
from w2s_app.wiring import build_services

# (setting, a bad value every surface can send): too big, too small, not whole, not a choice.
BAD = [("w", 999), ("k", 0), ("l", 2.5), ("n", 65), ("beta", 11), ("max_new_tokens", 0),
       ("temperature", 9), ("top_p", 0), ("seed", -1), ("noise", "loud")]  # fmt: skip


@pytest.fixture(scope="module")
def page(tiny_presets_file, tmp_path_factory):
    """The page's own action (below Gradio), on the process's services."""
    data = tmp_path_factory.mktemp("page")
    services = build_services(
        Settings.from_env({"W2S_PRESETS": str(tiny_presets_file), "W2S_DATA_DIR": str(data)})
    )
    voter = services.identity.verify(services.identity.issue())

    def run(name: str, value: object) -> str:
        values = values_of([value if o.name == name else None for o in options.ALL])
        with pytest.raises(ArenaError) as err:
            list(compare.compare_stream(services, Caller(voter, None), "Hi", "fake", ["baseline"], values))
        return str(err.value)

    return run


@pytest.fixture(scope="module")
def compare_endpoint(app_server):
    client = Client(app_server.url, verbose=False)
    token = client.predict(api_name="/token")

    def run(name: str, value: object) -> str:
        with pytest.raises(Exception) as err:  # gradio_client's AppError carries the message
            client.predict("Hi", token, "fake", "baseline", **{name: value}, api_name="/compare")
        return str(err.value).strip()

    return run


@pytest.fixture(scope="module")
def service(serve_server):
    client = openai.OpenAI(base_url=serve_server.base_url, api_key="x", max_retries=0, timeout=60)

    def run(name: str, value: object) -> tuple[str, str]:
        option = options.BY_NAME[name]
        with pytest.raises(openai.BadRequestError) as err:
            client.completions.create(
                model="fake/baseline", prompt="Hi", extra_body={option.surface_name("serve"): value}
            )
        return err.value.body["message"], err.value.body["param"]

    return run


def command_line(name: str, value: object, tiny_env, capsys) -> str:
    flag = "--" + name.replace("_", "-")
    code = main(["generate", "--preset", "fake", "--prompt", "Hi", "--methods", "baseline", flag, str(value)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err  # one line, exit 2
    return err.removeprefix("error: ").strip()


@pytest.mark.parametrize(("name", "value"), BAD)
def test_same_bad_value_same_message_and_field_on_every_surface(
    name, value, page, compare_endpoint, service, tiny_env, capsys
):
    with pytest.raises(options.OptionError) as err:
        options.validate({name: value})
    expected = str(err.value)
    assert expected.startswith(f"{name} must be")  # the message names the field
    assert page(name, value) == expected
    assert compare_endpoint(name, value) == expected
    assert command_line(name, value, tiny_env, capsys) == expected
    message, param = service(name, value)
    assert message == expected and param == options.BY_NAME[name].surface_name("serve")


def test_a_bool_is_not_a_number_anywhere(compare_endpoint, service):
    """/compare with w=true used to run as w=1."""
    expected = "w must be a whole number between 1 and 16, got true"
    assert compare_endpoint("w", True) == expected
    assert service("w", True) == (expected, "w")


def test_service_refuses_a_bad_setting_of_another_method_before_queueing(serve_server):
    """tiny/baseline with w=999 was queued and failed in the worker with param null."""
    client = openai.OpenAI(base_url=serve_server.base_url, api_key="x", max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="fake/baseline", prompt="Hi", extra_body={"w": 999})
    assert err.value.status_code == 400 and err.value.body["param"] == "w"
    assert serve_server.health()["waiting"] == 0 and serve_server.health()["running"] == 0


def test_every_surface_offers_every_setting(app_server, serve_server):
    from w2s_app.cli import build_parser
    from w2s_app.serve.schemas import CompletionRequest

    gradio = Client(app_server.url, verbose=False).view_api(return_format="dict", print_info=False)
    compare = {p["parameter_name"] for p in gradio["named_endpoints"]["/compare"]["parameters"]}
    flags = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["generate"]._actions}
    fields = set(CompletionRequest.model_fields)
    for o in options.ALL:
        assert o.name in compare and o.name in flags, o.name
        assert o.surface_name("serve") in fields, o.name


def test_a_weak_admin_key_stops_the_app_the_service_and_the_command_line_alike(tiny_env, monkeypatch, capsys):
    """Deployment variables are checked once (config/settings.py): every door refuses with the same line."""
    env = {**os.environ, "W2S_ADMIN_KEY": "hunter2", "PYTHONPATH": str(ROOT)}
    app = [sys.executable, str(ROOT / "app.py")]
    serve = [sys.executable, "-m", "w2s_app", "serve", "--port", str(free_port())]
    doors = {  # both real processes at once: each stops before it listens
        "w2s-arena: cannot start: ": subprocess.Popen(
            app, env={**env, "GRADIO_SERVER_PORT": str(free_port())}, stderr=subprocess.PIPE, text=True
        ),
        "error: ": subprocess.Popen(serve, env=env, stderr=subprocess.PIPE, text=True),
    }
    monkeypatch.setenv("W2S_ADMIN_KEY", "hunter2")
    code = main(["leaderboard"])
    line = capsys.readouterr().err.removeprefix("error: ")
    assert code == 2 and line.startswith("W2S_ADMIN_KEY is too short (7 characters): use 16 or more"), line
    assert line.count("\n") == 1
    for prefix, proc in doors.items():
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 2 and err == prefix + line, err[-2000:]


@pytest.mark.parametrize("name,bad", [("min_vote_seconds", "soon"), ("min_vote_seconds", "-3"),
                                      ("source", "judge:")])  # fmt: skip
def test_a_bad_view_value_gets_the_same_message_through_every_door(
    name, bad, app_server, serve_server, tiny_env, capsys
):
    """The leaderboard view is declared once (leaderboard/views.py): the CLI, the Gradio /leaderboard
    endpoint and the JSON route of both the page's and the service's process say the same thing."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    said = {}
    code = main(["leaderboard", "--preset", "fake", f"--{name.replace('_', '-')}", bad])
    assert code == 2
    said["cli"] = capsys.readouterr().err.strip().removeprefix("error: ")
    values = {"preset": "fake", "style_control": False, "min_vote_seconds": 0, "drop_one_position": False,
              "source": "humans", "drop_followers": False, name: bad}  # fmt: skip
    with pytest.raises(Exception) as err:
        Client(app_server.url, verbose=False).predict(*values.values(), api_name="/leaderboard")
    said["gradio"] = str(err.value)
    for door, base in (
        ("json (page)", app_server.url.rstrip("/")),
        ("json (serve)", serve_server.base_url[:-3]),
    ):
        url = f"{base}/w2s/leaderboard.json?{urllib.parse.urlencode({'preset': 'fake', name: bad})}"
        with pytest.raises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(url, timeout=30)
        assert http.value.code == 400
        said[door] = json.loads(http.value.read())["error"]
    assert said["cli"] and name in said["cli"], said
    assert len(set(said.values())) == 1, said  # one message, word for word
