"""Issue 15, item 8: ``.env`` is read with python-dotenv, as a user expects from a shell; a
``.env`` that points the environment's key at another host is announced (item 3)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from kimi_jupyter.settings import read_dotenv, resolve_settings

pytestmark = pytest.mark.timeout(30)

KEY = "sk-dotenv-0123456789abcdefghijkl"


@pytest.mark.parametrize(("line", "value"), [
    ("MOONSHOT_API_KEY='abc'  # my key", "abc"),
    ('MOONSHOT_API_KEY="abc"  # my key', "abc"),
    ("MOONSHOT_API_KEY=abc # my key", "abc"),
    ("MOONSHOT_API_KEY=abc#def", "abc#def"),
    ("export MOONSHOT_API_KEY=abc", "abc"),
    ("MOONSHOT_API_KEY = abc", "abc"),
    ("MOONSHOT_API_KEY='a b # c'", "a b # c"),
    ('MOONSHOT_API_KEY="line\\nbreak"', "line\nbreak"),
    ("MOONSHOT_API_KEY=${HOME}", "${HOME}"),  # no expansion: a .env cannot pull other secrets in
])
def test_quotes_comments_and_export_work_as_in_a_shell(tmp_path, line, value):
    (tmp_path / ".env").write_text(f"# a comment\n\n{line}\nOTHER=1\n")
    values = read_dotenv(tmp_path / ".env")
    assert values["MOONSHOT_API_KEY"] == value and values["OTHER"] == "1"


def test_the_value_reaches_the_settings(tmp_path):
    (tmp_path / ".env").write_text(f"MOONSHOT_API_KEY='{KEY}'  # my key\nKIMI_MODEL=kimi-k2.5 # the model\n")
    s = resolve_settings(environ={}, cwd=tmp_path)
    assert s.api_key.get() == KEY and s.model == "kimi-k2.5"
    assert s.sources["api_key"] == ".env (MOONSHOT_API_KEY)"


def test_missing_binary_fifo_or_huge_files_give_nothing(tmp_path):
    assert read_dotenv(tmp_path / ".env") == {}
    (tmp_path / ".env").write_bytes(b"\xff\xfe\x00garbage")
    assert read_dotenv(tmp_path / ".env") == {}
    (tmp_path / ".env").write_text("A=" + "x" * (2 * 1024 * 1024))
    assert read_dotenv(tmp_path / ".env") == {}
    (tmp_path / ".env").unlink()
    os.mkfifo(tmp_path / ".env")
    got: list[dict] = []
    thread = threading.Thread(target=lambda: got.append(read_dotenv(tmp_path / ".env")), daemon=True)
    thread.start()
    thread.join(5)
    assert got == [{}], "a FIFO named .env blocked the reader"


def test_a_dotenv_url_with_the_environment_key_is_announced(tmp_path):
    (tmp_path / ".env").write_text("KIMI_BASE_URL=https://collector.example.net/v1\n")
    s = resolve_settings(environ={"MOONSHOT_API_KEY": KEY}, cwd=tmp_path)
    notice = s.key_destination_notice()
    assert notice == ("Your API key (from environment (MOONSHOT_API_KEY)) will be sent to collector.example.net, "
                      "a base URL set by .env (KIMI_BASE_URL). If you did not set that, stop and check it.")
    assert KEY not in notice


@pytest.mark.parametrize(("environ", "dotenv", "config", "announced"), [
    ({"MOONSHOT_API_KEY": KEY, "KIMI_BASE_URL": "https://gw.example.net/v1"}, "", {}, False),  # one source
    ({}, f"MOONSHOT_API_KEY={KEY}\nKIMI_BASE_URL=https://gw.example.net/v1\n", {}, False),  # one file
    ({"MOONSHOT_API_KEY": KEY}, "", {}, False),  # the provider's default URL
    ({"MOONSHOT_API_KEY": KEY}, "KIMI_BASE_URL=https://api.moonshot.ai/v1\n", {}, False),  # a known host
    ({"MOONSHOT_API_KEY": KEY}, "", {"base_url": "http://10.0.0.5:8000/v1"}, True),  # a notebook cell
    ({"KIMI_BASE_URL": "https://gw.example.net/v1"}, "", {"api_key": KEY}, True),
    ({}, "KIMI_BASE_URL=https://gw.example.net/v1\n", {}, False),  # no key: nothing to send
])
def test_when_the_notice_appears(tmp_path, environ, dotenv, config, announced):
    if dotenv:
        (tmp_path / ".env").write_text(dotenv)
    s = resolve_settings(config=config, environ=environ, cwd=tmp_path)
    assert (s.key_destination_notice() is not None) == announced


def test_the_notice_is_given_once_per_destination(tmp_path):
    from kimi_jupyter.secrets import key_notice_once

    (tmp_path / ".env").write_text("KIMI_BASE_URL=https://once.example.net/v1\n")
    s = resolve_settings(environ={"MOONSHOT_API_KEY": KEY}, cwd=tmp_path)
    assert "once.example.net" in (key_notice_once(s) or "")
    assert key_notice_once(s) is None


def test_the_lab_scripts_dotenv_snippet_still_runs(tmp_path):
    """``.ci/lab`` passes ./.env on to its kernels through ``read_dotenv``: run its snippet."""
    import re
    import subprocess
    import sys

    lab = (Path(__file__).resolve().parents[1] / ".ci" / "lab").read_text()
    snippet = re.search(r"<<'PYEOF'\n(.*?)\nPYEOF", lab, re.S).group(1)
    (tmp_path / ".env").write_text(f"MOONSHOT_API_KEY='{KEY}'  # mine\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MOONSHOT_API_KEY", "KIMI_API_KEY")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"export MOONSHOT_API_KEY={KEY}"
