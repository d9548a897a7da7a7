"""Bad input: a hostile structured answer is one bad row, an endless iterator is refused,
and ``--into`` does not replace a column the template reads (real kernel for the magic)."""

from __future__ import annotations

import itertools

import pytest

import kimi_jupyter
from kimi_jupyter.rows.data import RowsError
from kimi_jupyter.testing import Reply

from ..kernels import run, running_kernel, text_of

pytestmark = pytest.mark.timeout(240)


def test_a_deeply_nested_answer_is_a_bad_row_and_the_run_goes_on(kimi_sim_env):
    kimi_sim_env.on(r"row 1\b", Reply(text="[" * 100_000 + "]" * 100_000))
    kimi_sim_env.on(r"row 2\b", Reply(text='{"name": "' + "x" * 5_000_000 + '"}', chunk_chars=500_000))
    kimi_sim_env.on(r"row", Reply(text='{"name": "ok"}'))
    out = kimi_jupyter.map("row {value}", ["0", "1", "2", "3"], schema={"name": str}, progress=False)
    assert [a["name"] if a else None for a in out] == ["ok", None, None, "ok"], out.errors
    assert "nests deeper" in out.errors[1] and "MiB" in out.errors[2]


def test_an_endless_iterator_is_refused_without_draining_it(kimi_sim_env):
    drawn = itertools.count()
    with pytest.raises(RowsError, match="more than 1,000,000 rows"):
        kimi_jupyter.map("Say {value}", (str(next(drawn)) for _ in itertools.count()), progress=False)
    assert next(drawn) <= 1_000_002  # read up to the cap, no further
    assert not kimi_sim_env.requests


def test_into_does_not_replace_an_input_column_without_force(kimi_sim_env, tmp_path):
    env = {"MOONSHOT_API_KEY": "sk-test-simulator", "KIMI_BASE_URL": kimi_sim_env.base_url, "KIMI_PROVIDER": "moonshot"}
    kimi_sim_env.on(r"Shorten", Reply(text="short"))
    with running_kernel(env, tmp_path) as (_, client):
        run(client, "%load_ext kimi_jupyter\nimport pandas as pd\ndf = pd.DataFrame({'text': ['a long text']})")
        _, msgs = run(client, "%%kimi --each df --into text\nShorten: {text}")
        shown = text_of(msgs)
        assert "would replace the column 'text'" in shown and "--force" in shown and "Traceback" not in shown
        assert not kimi_sim_env.chat_requests
        _, msgs = run(client, "print(df['text'].tolist())")
        assert "['a long text']" in text_of(msgs)
        run(client, "%%kimi --each df --into text --force\nShorten: {text}")
        _, msgs = run(client, "print(df['text'].tolist())")
        assert "['short']" in text_of(msgs)
