"""`%%kimi` and `%kimi`: the front door in a notebook.

The cell magic turns the cell into one multimodal user message (``{name}`` references become
text, DataFrame summaries, images or videos in place), runs it through the same turn engine
as `ask()` and the sidebar, and streams the answer into the cell's output. Everything a user
can get wrong (an unknown option, a name that does not exist, a missing key) ends in one
short message and nothing is sent.

Loading must stay cheap: only IPython, traitlets and our light modules are imported here.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic import cell_magic as _cell_magic
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Int, Unicode
from traitlets.config import Configurable

from .errors import CellFailed, KimiError
from .settings import SETTING_HELP, Secret, Settings, public_url

if TYPE_CHECKING:
    from .session import Session

__all__ = ["KimiMagics", "Kimi", "load_ipython_extension", "unload_ipython_extension"]

FORMAT_HINTS = {
    "code": ("Answer with one short explanation and then the complete Python code in a single "
             "```python fenced block."),
    "json": "Answer with a single JSON object and nothing else.",
}


def _trait_for(field: dataclasses.Field[Any]) -> Any:
    default = field.default if field.default is not dataclasses.MISSING else None
    help_text = SETTING_HELP.get(field.name, "")
    kind = str(field.type)
    if field.name == "api_key":
        return Unicode(None, allow_none=True, help=help_text).tag(config=True)
    if kind.startswith("bool"):
        return Bool(default, allow_none="None" in kind, help=help_text).tag(config=True)
    if kind.startswith("int"):
        return Int(default, allow_none="None" in kind, help=help_text).tag(config=True)
    if kind.startswith("float"):
        return Float(default, allow_none="None" in kind, help=help_text).tag(config=True)
    if kind.startswith("str"):
        return Unicode(default, allow_none="None" in kind, help=help_text).tag(config=True)
    return AnyTrait(default, allow_none=True, help=help_text).tag(config=True)


def _trait_help(cls: Any, trait: Any, inst: Any = None, helptext: str | None = None) -> str:
    """`%config Kimi` prints every trait's current value: never the key's."""
    if trait.name != "api_key" or inst is None:
        return Configurable.class_get_trait_help.__func__(cls, trait, inst, helptext)  # type: ignore[attr-defined]
    text = Configurable.class_get_trait_help.__func__(cls, trait, None, helptext)  # type: ignore[attr-defined]
    key = getattr(inst, "api_key", None)
    shown = repr(Secret(key).masked()) if key else "None"
    return "\n".join(line for line in text.split("\n") if not line.strip().startswith("Default:")) + (
        f"\n    Current: {shown}"
    )


# `%config Kimi.<name> = value`: one trait per Settings field, generated so they never drift.
Kimi = type(
    "Kimi",
    (Configurable,),
    {
        "__doc__": "Settings of kimi_jupyter (see `%kimi config` for the effective values).",
        "class_get_trait_help": classmethod(_trait_help),
        **{f.name: _trait_for(f) for f in dataclasses.fields(Settings) if f.name != "sources"},
    },
)


def _say(message: str) -> None:
    """One short line for the user (stderr, so it stands out and is never mistaken for an answer)."""
    print(message, file=sys.stderr)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


_positive_int.__name__ = "positive integer"  # argparse names the type in its message


def _text(value: str) -> str:
    """IPython keeps quotes in magic arguments: `--system 'Be brief.'` means Be brief."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _with_text(content: Any, text: str) -> Any:
    """``content`` (a string or content parts) with ``text`` added at the end."""
    if isinstance(content, list):
        return [*content, {"type": "text", "text": text}]
    return f"{content}{text}"


def _usage(parser: Any) -> str:
    text = parser.format_usage().replace("::", "").strip()
    return " ".join(text.split()).replace("%kimi", "%%kimi", 1)


@magics_class
class KimiMagics(Magics):
    def __init__(self, shell: Any, session: Session | None = None):
        super().__init__(shell)
        self._session = session
        self._media: Any = None  # the last cell's MediaSink (Files API, documents)
        self.configurable = Kimi(parent=shell)
        self.plots.install(shell)  # from now on, displayed plots are recorded per cell

    @property
    def plots(self) -> Any:
        """The shell's one plot capture (looked up each time: it may have been replaced)."""
        from .context.plots import get_plot_capture

        return get_plot_capture(self.shell)

    @property
    def session(self) -> Session:
        from .session import get_session

        return self._session or get_session()

    # -- %%kimi --------------------------------------------------------------------------
    @magic_arguments.magic_arguments()
    @magic_arguments.argument("-m", "--model", type=_text, help="model id for this cell (see %%kimi models)")
    @magic_arguments.argument("--think", dest="thinking", action="store_const", const=True, default=None,
                              help="ask for the reasoning trace (default for kimi-k2.5)")
    @magic_arguments.argument("--no-think", dest="thinking", action="store_const", const=False,
                              help="answer without reasoning (faster, cheaper)")
    @magic_arguments.argument("--effort", choices=["low", "high", "max"],
                              help="thinking effort (models with effort levels, e.g. kimi-k3)")
    @magic_arguments.argument("-f", "--format", default="markdown", choices=["markdown", "code", "text", "json"],
                              help="markdown (default); code: put the generated code in a new cell below; "
                                   "text: plain text; json: JSON mode, shows the parsed value")
    @magic_arguments.argument("--new", action="store_true", help="start a fresh conversation")
    @magic_arguments.argument("--agent", action="store_true",
                              help="let Kimi call tools in this kernel (run_python asks before running)")
    @magic_arguments.argument("--yes", action="store_true",
                              help="with --agent: run the model's code without asking, for this cell")
    @magic_arguments.argument("--web", action="store_true", help="with --agent: allow Kimi's builtin web search")
    @magic_arguments.argument("--max-tokens", type=_positive_int, help="limit on generated tokens")
    @magic_arguments.argument("--system", type=_text, help="system prompt for this conversation")
    @magic_arguments.argument("--cells", type=_positive_int, metavar="N",
                              help="attach the last N cells' source and outputs")
    @magic_arguments.argument("--plot", action="store_true", help="attach the plot(s) the previous cell displayed")
    @magic_arguments.argument("--cache", action="store_true",
                              help="replay this cell's answer from the on-disk cache when the request is unchanged")
    @magic_arguments.argument("--keep-going", action="store_true",
                              help="if the turn fails, print the message and end the cell as ok "
                                   "(default: the cell fails, so Run All stops)")
    @magic_arguments.argument("--display", choices=["auto", "widget", "markdown", "text", "none"],
                              help="how to show the answer (default: auto)")
    @magic_arguments.argument("--prefill", type=_text, metavar="TEXT",  # partial mode
                              help="start the answer with TEXT; Kimi continues it (partial mode)")
    # --each/--into/--batch/--schema run the cell once per row (rows/magic.py)
    @magic_arguments.argument("--each", metavar="DATA", help="run the cell once per row of this frame or list")
    @magic_arguments.argument("--into", metavar="COLUMN", help="with --each: the column for the answers")
    @magic_arguments.argument("--batch", action="store_true", help="with --each: use Moonshot's Batch API")
    @magic_arguments.argument("--schema", metavar="NAME",
                              help="a JSON schema or {field: type} dict in the notebook: with -f json the answer is "
                                   "checked against it (asked once more if it does not match); with --each one "
                                   "column per field")
    @_cell_magic
    def kimi(self, line: str, cell: str) -> None:
        """Send the cell to Kimi and stream the answer here.

        ``{name}`` inserts a variable: text stays text, DataFrames become a compact summary,
        figures, images and image paths become images, video paths become video; ``{In[3]}``
        and ``{Out[3]}`` insert an earlier cell. ``{{`` and ``}}`` are literal braces, and any
        ``{...}`` that is not a plain name is left as typed. The last response is ``_kimi``.
        """
        try:
            args = magic_arguments.parse_argstring(self.kimi, line)
        except (UsageError, ValueError) as error:  # ValueError: shlex, e.g. "No closing quotation"
            return self._fail(f"%%kimi: {error}. Nothing was sent.\n{_usage(self.kimi.parser)}\n"
                              "(%%kimi? shows every option)")
        if not cell.strip():
            return self._fail("The cell is empty: write your question below %%kimi.", args.keep_going)
        if args.each:  # rows: one turn per row (kimi_jupyter.rows)
            from .rows.magic import run_each

            return run_each(self.shell, args, cell.rstrip())
        if (args.yes or args.web) and not args.agent:
            return self._fail("--yes and --web only apply with --agent; nothing was sent.", args.keep_going)
        if args.schema and args.format != "json":
            return self._fail("--schema applies with -f json (or --each); nothing was sent.", args.keep_going)
        try:
            settings = self.session.settings(model=args.model, thinking=args.thinking, effort=args.effort,
                                             max_tokens=args.max_tokens, system=args.system,
                                             keep_going=True if args.keep_going else None)
            schema = self._schema(args.schema) if args.schema else None
            web_notices: list[Any] = []
            if args.web:  # thinking off while $web_search is offered
                from .web import web_settings

                settings, web_notices = web_settings(settings)
            content = self._content(cell.rstrip(), args, settings)
            strategy = None
            if args.agent:
                from .agent.loop import agent_strategy

                # record=False: the turn's view lists the steps inside its answer
                strategy = agent_strategy(self.shell, auto=bool(args.yes or settings.auto_approve), web=args.web,
                                          record=False)
        except (KimiError, ValueError) as error:
            return self._fail(str(error), args.keep_going)
        if args.new:
            self.session.reset()
        from .context.media import request_extras
        from .display import choose_renderer
        from .partial import prefill_options
        from .turn import TurnRequest, run_turn

        if schema is not None:  # the schema goes with the prompt and as response_format
            content = _with_text(content, "\n\n" + schema.instruction())
        request = TurnRequest(
            content=content,
            settings=settings,
            response_format=schema.response_format(settings.model_info) if schema is not None else (
                {"type": "json_object"} if args.format == "json" else None),
            source="magic",
            mode={**({"agent": True, "web": args.web} if args.agent else {}),
                  **({"schema": schema.json_schema} if schema is not None else {})},
            cache=True if args.cache else None,
            strategy=strategy,
            # documents (system messages), notices and partial mode's prefill
            **request_extras(self._media, web_notices, prefill_options(args.format, args.prefill, settings)),
        )
        renderer = choose_renderer("text" if args.format == "text" and not args.display else
                                   (args.display or settings.display), shell=self.shell)
        try:
            response = run_turn(self.session, request, renderer)
            if schema is not None:  # one more ask with the validation error, in the same conversation
                from .api import schema_result, schema_retry

                retry = schema_retry(schema, request, response)
                if retry is not None:
                    response = schema_result(schema, run_turn(self.session, retry, choose_renderer(
                        args.display or settings.display, shell=self.shell)))
        finally:
            if self.session.last is not None:
                self.shell.user_ns["_kimi"] = self.session.last
        if response.error is not None:
            return self._fail(response.error, settings.keep_going, shown=True)
        self._after(response, args.format, schema)
        return None

    def _schema(self, name: str) -> Any:
        """The `structured.Schema` of the notebook variable ``name`` (raises a one-line error)."""
        from .structured import Schema, SchemaError

        name = _text(name)
        if name not in self.shell.user_ns:
            raise SchemaError(f"--schema {name}: there is no such variable in the notebook. Nothing was sent.")
        return Schema(self.shell.user_ns[name], name=name)

    def _fail(self, message: str, keep_going: bool | None = None, shown: bool = False) -> None:
        """End the cell: in error (so Run All stops), or, with --keep-going, as ok."""
        if keep_going is None:
            try:
                keep_going = self.session.settings().keep_going
            except KimiError:
                keep_going = False
        if not keep_going:
            raise CellFailed(message)
        if not shown:
            _say(message)
        return None

    def _content(self, cell: str, args: Any, settings: Settings) -> str | list[dict[str, Any]]:
        from .context import recent_cells
        from .context.composer import compose
        from .context.errors import ContextError
        from .secrets import secrets_of

        secrets = secrets_of(settings)  # no key in --cells, {var}, {In[n]}
        before: list[dict[str, Any]] = []
        if args.cells:
            before.append({"type": "text", "text": "Context: the notebook's recent cells\n"
                           + recent_cells(self.shell, args.cells, self.plots.running_count(), plots=self.plots,
                                          secrets=secrets)})
        from .context.media import session_sink

        self._media = session_sink(self.session, settings)  # Files API media and documents
        after: list[dict[str, Any]] = []
        if args.plot:
            running = self.plots.running_count()
            images = self.plots.last_plots(running)
            if not images:
                raise ContextError("--plot: no earlier cell displayed a plot. Run the plotting cell first, "
                                   "or reference a figure as {fig} or an output as {Out[n]}.")
            from .context import image_part

            source = max(c for c in self.plots.counts() if running is None or c < running)
            after.append({"type": "text", "text": f"[plot displayed by cell {source}]"})
            after.extend(image_part(png, max_size=settings.image_max_size) for png in images)
        hint = FORMAT_HINTS.get(args.format)
        if hint:
            after.append({"type": "text", "text": "\n\n" + hint})
        return compose(cell, self.shell.user_ns, frame_budget=settings.frame_budget,
                       image_max_size=settings.image_max_size, before=before, after=after, history=self.plots,
                       secrets=secrets, media=self._media)

    def _after(self, response: Any, fmt: str, schema: Any = None) -> None:
        if fmt == "code":
            code = response.code
            if code:
                self.shell.set_next_input(code, replace=False)
            else:
                _say("The answer contained no code block, so no cell was added.")
        elif fmt == "json":
            from IPython.display import display

            from .structured import loads_bounded

            value, problem = loads_bounded(response.text) if schema is None else schema.check(response.text)
            if value is None:
                _say(f"The answer was not valid JSON ({problem}); its text is kept in _kimi.text.")
                return
            if problem is not None:
                _say(f"The answer does not match the schema after one retry ({problem}); it is shown as it came.")
            display({"application/json": value, "text/plain": json.dumps(value, indent=2, ensure_ascii=False)},
                    raw=True)

    # -- %kimi ---------------------------------------------------------------------------
    @line_magic("kimi")
    def kimi_line(self, line: str) -> Any:
        """%kimi help | reset | history | usage | config | models | balance | cache [info|clear]
        | files [list|clear] | fix | export PATH | record FILE"""
        command, _, rest = line.strip().partition(" ")
        handler = {
            "": self._help, "help": self._help, "reset": self._reset, "history": self._history,
            "usage": self._usage, "config": self._config, "models": self._models, "cache": self._cache,
            "files": self._files, "fix": self._fix, "export": self._export, "balance": self._balance,
            "record": self._record,
        }.get(command)
        if handler is None:
            _say(f"Unknown %kimi command {command!r}. Use: %kimi help | reset | history | usage | config | models "
                 "| balance | cache | files | fix | export | record")
            return None
        return handler(rest.strip())

    def _record(self, rest: str) -> None:
        """``%kimi record FILE | --stop``: name the recording (kimi_jupyter/recording.py)."""
        from .recording import RecordingError, record_command

        try:
            mode = self.session.settings().replay
            print(record_command(self.session, mode, rest, self.shell))
        except (KimiError, RecordingError) as error:
            raise CellFailed(str(error)) from None

    def _fix(self, rest: str) -> None:  # the logic is in kimi_jupyter/fix.py
        from .fix import fix_magic

        fix_magic(self, rest)

    def _export(self, rest: str) -> None:
        """``%kimi export PATH [--sidebar]``: the conversation as Markdown or .ipynb (export.py)."""
        from .export import secrets_to_hide, write_export
        from .transcript import transcript_for

        words = rest.split()
        sidebar = "--sidebar" in words
        words = [w for w in words if w != "--sidebar"]
        if len(words) != 1:
            _say("Use: %kimi export PATH.md|PATH.ipynb [--sidebar]  (--sidebar: the chat sidebar's conversation)")
            return
        if sidebar:
            from .sidebar.chat import chat

            owner, what = chat().memory, "sidebar chat"
        else:
            owner, what = self.session.notebook, "notebook cells"
        transcript = transcript_for(owner)
        try:
            target = write_export(_text(words[0]), transcript, secrets_to_hide(), what)
        except (ValueError, OSError) as error:
            _say(f"%kimi export: {error}")
            return
        count = len(transcript.turns)
        print(f"Exported {count} turn{'' if count == 1 else 's'} of the {what} to {target}.")

    def _help(self, _: str) -> None:
        print(HELP)

    def _reset(self, _: str) -> None:
        self.session.reset()
        print("Conversation cleared: the next %%kimi starts fresh.")

    def _history(self, _: str) -> None:
        print(self.session.conversation.history_text())

    def _usage(self, _: str) -> None:
        from IPython.display import display

        from .display.tables import usage_table

        display(usage_table(self.session.ledger), raw=True)
        try:  # the rate limits the server announced
            from .ratelimit import rate_limits

            limits = rate_limits().describe(self.session.settings().api_base)
        except KimiError:
            limits = ""
        if limits:
            print(limits)
        from .web import searches_for  # web search costs

        searches = searches_for(self.session).describe()
        if searches:
            print(searches)

    def _files(self, rest: str) -> None:
        from .context.media import files_report

        try:
            settings = self.session.settings()
        except KimiError as error:
            _say(str(error))
            return
        print(files_report(self.session, settings, rest or "list"))

    def _cache(self, rest: str) -> None:
        from .cache import ResponseCache

        try:
            settings = self.session.settings()
        except KimiError as error:
            _say(str(error))
            return
        cache = ResponseCache(settings.cache_dir)
        if rest in ("", "info"):
            entries, size = cache.info()
            state = "on" if settings.cache else "off (%config Kimi.cache = True, or %%kimi --cache)"
            print(f"Response cache: {state}; {entries} entries, {size / 1024:.1f} KiB in {cache.directory}/")
        elif rest == "clear":
            print(f"Removed {cache.clear()} cached responses from {cache.directory}/.")
        else:
            _say("Use: %kimi cache info | %kimi cache clear")

    def _config(self, _: str) -> None:
        try:
            rows = self.session.settings().describe()
        except KimiError as error:
            _say(str(error))
            return
        width = max(len(name) for name, _, _ in rows)
        lines = [f"{name:<{width}}  {value}    [{source}]" for name, value, source in rows]
        print("Effective settings (highest wins: argument > %config > environment > .env > default)\n")
        print("\n".join(lines))

    def _balance(self, _: str) -> None:
        """``%kimi balance``: the account balance from ``/users/me/balance`` (Moonshot's platforms)."""
        from .account import balance_text

        try:
            settings = self.session.settings()
        except KimiError as error:
            _say(str(error))
            return
        text, ok = balance_text(self.session.client(settings), settings)
        (print if ok else _say)(text)

    def _models(self, _: str) -> None:
        try:
            settings = self.session.settings()
            entries = self.session.client(settings).model_entries()  # the model registry learns /models
        except KimiError as error:
            _say(str(error))
            return
        if not entries:
            print(f"{public_url(settings.base_url)} lists no models.")
            return
        from .models import models_report  # id, window, price, modalities

        print(models_report(public_url(settings.base_url), settings.model, settings.provider, entries,
                            settings.model_overrides))


HELP = """\
kimi_jupyter: Kimi K2.5 in this notebook.

%%kimi [options]          the cell is the prompt; the answer streams below it
  -m MODEL                model for this cell            --think / --no-think
  -f markdown|code|text|json  code: the generated code goes into a new cell below
  --new                   start a fresh conversation     --max-tokens N
  --system TEXT           system prompt                  --cells N  attach the last N cells
  --plot                  attach the previous cell's plot(s)
  --agent                 Kimi may call run_python / get_variable / list_variables here;
                          code runs only after you approve it (--yes: without asking; --web: web search)
  --cache                 replay an unchanged request from the on-disk cache (no request, no bill)
  --prefill TEXT          start the answer with TEXT (partial mode; -f code/json prefill a fence / {)
  {name}                  insert a variable (DataFrame summary, figure/image, video path, text,
                          document path: pdf/docx/xlsx/pptx/txt/md as a system message)
  {In[3]} {Out[3]}        insert an earlier cell's source / output;  {{ }} literal braces

%kimi reset | history | usage | config | models | cache [info|clear] | files [list|clear] | help
%kimi fix                 after a failing cell: Kimi proposes a minimal fix as a diff (Accept/Reject in Lab)
%kimi export PATH         write the conversation to PATH.md or PATH.ipynb (--sidebar: the sidebar's chat)
%kimi record FILE         record every turn to FILE (JSON lines); KIMI_REPLAY=only replays them without a key
_kimi                     the last Response (.text, .reasoning, .usage, .tool_steps, .code_blocks)
%config Kimi.model = "kimi-k2.5"   (see %kimi config for every setting and where it came from)
Key: MOONSHOT_API_KEY in the environment or a .env file next to the notebook."""


def load_ipython_extension(ipython: Any) -> None:
    magics = KimiMagics(ipython)
    ipython.register_magics(magics)
    if magics.configurable not in ipython.configurables:
        ipython.configurables.append(magics.configurable)


def unload_ipython_extension(ipython: Any) -> None:
    for magics in list(ipython.magics_manager.registry.values()):
        if isinstance(magics, KimiMagics):
            magics.plots.uninstall()
            if magics.configurable in ipython.configurables:
                ipython.configurables.remove(magics.configurable)
