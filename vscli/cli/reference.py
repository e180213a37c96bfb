"""Reference documentation generated from the command definitions: the man page, the Markdown CLI
reference, the shell completion scripts and the README's tables of environment variables and exit codes.

`scripts/generate_docs.py` writes them; a test regenerates them and fails when a committed copy is stale.
Only what click cannot know is written here: the environment variables that are not option defaults,
the files vscli keeps, and the exit codes' meanings (in `vscli.errors`).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Iterator

from vscli import __version__
from vscli.errors import EXIT_MEANINGS

SHELLS = {"bash": "vscli.bash", "zsh": "_vscli", "fish": "vscli.fish"}

ENVIRONMENT: list[tuple[str, str]] = [
    ("VSCLI_HOME", "the workspace directory (same as `--home`)"),
    ("VSCLI_DEBUG", "`1`: print tracebacks with errors (same as `--debug`)"),
    ("VSCLI_CONFIG", "the config file's path"),
    ("VSCLI_EMBEDDING_MODEL", "the default `--model` for `create`"),
    ("VSCLI_SEARCH_MODE", "the default `--mode` of `query` and `ask`: `hybrid`, `vector` or `keyword`"),
    ("VSCLI_SEARCH_FUSION", "the default `--fusion` of `query` and `ask`: `score` (relevance 0..1) or `rrf`"),
    ("VSCLI_MAX_FILE_BYTES", "the upload size limit in bytes (default 536870912, 512 MB as OpenAI)"),
    ("VSCLI_USAGE_LOG_BYTES", "the size at which the usage log (`logs/usage.jsonl`) is rotated (default 10485760; "
     "five rotated files are kept)"),
    ("VSCLI_FLAT_MAX_VECTORS", "the size (in vectors) above which an index segment is built as IVF (default 200000)"),
    ("VSCLI_BATCH_CHUNKS", "about how many chunks are embedded and committed together (default 256)"),
    ("VSCLI_EMBED_THREADS", "the threads ingest embeds with (default: the cores available; up to four onnxruntime "
     "sessions side by side)"),
    ("VSCLI_BACKEND", "the default `--backend` of `create`: `faiss` or `milvus`"),
    ("VSCLI_MILVUS_URI", "the default `--uri` of `create` and `migrate`: a Milvus Lite file or a Milvus server"),
    ("VSCLI_MILVUS_TOKEN", "the token for Milvus servers (above the config file's `milvus_token`)"),
    ("VSCLI_MILVUS_LITE_WAIT", "seconds to wait for a Milvus Lite file another process holds (default 120)"),
    ("VSCLI_CACHE_DIR", "where ONNX exports of models are cached (default: the user cache dir, `~/.cache/vscli`)"),
    ("VSCLI_BASE_URL", "`ask`: the chat-completions endpoint"),
    ("VSCLI_API_KEY", "`ask`: the API key, sent as a bearer token"),
    ("VSCLI_MODEL", "`ask`: the chat model"),
    ("VSCLI_TOP_K", "`ask`: passages to retrieve (default 5)"),
    ("VSCLI_MAX_CONTEXT_TOKENS", "`ask`: the token budget for the passages (default 3000)"),
    ("VSCLI_TEMPERATURE", "`ask`: the sampling temperature"),
    ("VSCLI_MAX_TOKENS", "`ask`: a limit on the answer's length"),
    ("VSCLI_TIMEOUT", "`ask`: seconds to wait for the endpoint (default 60)"),
    ("VSCLI_SERVE_API_KEY", "`serve`: the API key clients must send (same as `--api-key`)"),
    ("OPENAI_BASE_URL", "`ask`: the standard endpoint setting, below `VSCLI_BASE_URL`"),
    ("OPENAI_API_KEY", "`ask`: the standard key setting, below `VSCLI_API_KEY`"),
    ("NO_COLOR", "no colour in tables, even on a terminal"),
    ("HF_HUB_OFFLINE", "vscli sets `1` unless you set it: models are never downloaded at run time"),
]

FILES: list[tuple[str, str]] = [
    ("files/registry.sqlite", "the upload registry (SQLite, WAL): one row per upload (its `file` object, content "
     "sha256, name, creation time), indexed by id, content and time; its commit is an upload's commit point. A "
     "workspace of vscli 0.2 gains it from the folders' file.json at its first look"),
    ("files/<file-id>/content", "the uploaded bytes, unchanged; uploads of identical bytes share them (hard links)"),
    ("files/<file-id>/file.json", "the OpenAI `file` object and the content's sha256 (what the registry is "
     "rebuilt from)"),
    ("stores/<vs-id>/store.json", "the `vector_store` object, its model, dimension, chunking strategy and backend"),
    ("stores/<vs-id>/catalog.sqlite", "the store's catalog (SQLite, WAL): one row per `vector_store.file` entry "
     "(each with its upload's sha256 and name), the FAISS segments that hold their vectors, the next serial; "
     "its commit is the store's commit point. A store of vscli 0.1 has `files.json` instead until its first write"),
    ("stores/<vs-id>/chunks.sqlite", "the chunk texts (SQLite, WAL): one row per chunk (its text, character offsets, "
     "tokens, PDF pages) keyed by the file's serial and the chunk's position, so a query reads its hits' rows "
     "alone; written before the catalog names a serial. A store of vscli 0.3 has `chunks/<n>.json` (a manifest "
     "per file) instead until its next write moves them in"),
    ("stores/<vs-id>/index-<n>.faiss", "a FAISS segment (inner product on normalized vectors), immutable: one per "
     "commit, merged as they multiply; none on Milvus"),
    ("stores/<vs-id>/milvus-writing", "Milvus stores: present while a commit's rows are not yet named by the catalog"),
    ("stores/<vs-id>/keyword/", "the keyword (BM25) index: tantivy's segments, one document per chunk"),
    ("locks/", "inter-process locks (filelock)"),
    ("logs/worker.log", "stderr of background workers (`--no-wait`)"),
    ("logs/usage.jsonl", "the usage log: a line per server request and per embedded batch (`vscli usage`)"),
]


# ---- the command tree -----------------------------------------------------------------------------------


@dataclass
class Param:
    names: str  # "-k, --max-results" or "STORE"
    metavar: str  # what follows an option ("" for flags)
    help: str
    default: str  # shown default, or ""
    envvar: str
    required: bool
    argument: bool


@dataclass
class Command:
    path: str  # "vscli config set"
    usage: str  # "[OPTIONS] STORE TEXT"
    summary: str
    body: list[str]  # paragraphs after the summary; a paragraph starting with "\b" keeps its lines
    params: list[Param]


def _root() -> Any:
    from typer.main import get_command

    from vscli.cli import commands

    return get_command(commands())


def commands() -> Iterator[Command]:
    """The root and every visible command, depth first, in the order `vscli --help` lists them."""
    import typer._click as click

    root = _root()
    ctx = click.Context(root, info_name="vscli", **root.context_settings)
    yield _describe(root, ctx, "vscli")
    yield from _children(root, ctx, "vscli")


def _children(group: Any, ctx: Any, path: str) -> Iterator[Command]:
    import typer._click as click

    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub_ctx = click.Context(command, info_name=name, parent=ctx)
        yield _describe(command, sub_ctx, f"{path} {name}")
        if hasattr(command, "list_commands"):
            yield from _children(command, sub_ctx, f"{path} {name}")


def _describe(command: Any, ctx: Any, path: str) -> Command:
    text = inspect.cleandoc(command.help or "")
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]
    params = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        argument = param.param_type_name == "argument"
        if argument:
            names = param.metavar or param.name.upper()
            metavar = ""
        else:
            # short names first; click keeps the help option's names in a set, so its order varies
            names = ", ".join(sorted(param.opts, key=lambda o: (o.startswith("--"), len(o))) + param.secondary_opts)
            metavar = "" if param.is_flag else _metavar(param, ctx)
        default = ""
        if not argument and param.show_default and param.default not in (None, False, "", ()):
            default = str(param.default)
        envvar = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or ())
        params.append(Param(names, metavar, " ".join((getattr(param, "help", None) or "").split()), default,
                            envvar, bool(param.required), argument))
    pieces = command.collect_usage_pieces(ctx)
    return Command(path, " ".join(pieces), paragraphs[0] if paragraphs else "", paragraphs[1:], params)


def _metavar(param: Any, ctx: Any) -> str:
    try:
        return param.make_metavar(ctx)
    except TypeError:  # older click: make_metavar() takes no context
        return param.make_metavar()


def _lines(paragraph: str) -> tuple[bool, list[str]]:
    """(keep line breaks?, lines) for a help paragraph; click's \\b marker keeps them."""
    lines = paragraph.splitlines()
    if lines and lines[0].strip() == "\b":
        return True, [line.rstrip() for line in lines[1:]]
    return False, [" ".join(paragraph.split())]


# ---- Markdown ------------------------------------------------------------------------------------------


def markdown() -> str:
    out = [
        "# vscli command reference",
        "",
        "<!-- Generated by scripts/generate_docs.py from the command definitions; do not edit. -->",
        "",
        f"vscli {__version__}. Every command also takes `-h`/`--help`. Global options go before the command:",
        "`vscli --home /tmp/ws ls`.",
        "",
    ]
    for cmd in commands():
        depth = cmd.path.count(" ")
        out += [f"{'#' * min(depth + 1, 3)} `{cmd.path}`" if depth else "## Global", ""]
        out += ["```", f"{cmd.path} {cmd.usage}".rstrip(), "```", "", cmd.summary, ""]
        for paragraph in cmd.body:
            keep, lines = _lines(paragraph)
            out += (["```", *lines, "```"] if keep else lines) + [""]
        if cmd.params:
            out += ["| argument / option | meaning |", "|---|---|"]
            for p in cmd.params:
                name = f"`{p.names}{' ' + p.metavar if p.metavar else ''}`"
                extra = []
                if p.required and not p.argument:
                    extra.append("required")
                if p.default:
                    extra.append(f"default: `{p.default}`")
                if p.envvar:
                    extra.append(f"env: `{p.envvar}`")
                meaning = (p.help + (f" ({'; '.join(extra)})" if extra else "")).replace("|", "\\|")
                out.append(f"| {name} | {meaning} |")
            out.append("")
    out += ["## Environment", "", environment_table(), "", "## Exit codes", "", exit_code_table(), ""]
    return "\n".join(out)


def environment_table() -> str:
    rows = ["| variable | meaning |", "|---|---|"] + [f"| `{name}` | {meaning} |" for name, meaning in ENVIRONMENT]
    return "\n".join(rows)


def exit_code_table() -> str:
    return "\n".join(["| code | meaning |", "|---|---|"]
                     + [f"| {int(code)} | {meaning} |" for code, meaning in EXIT_MEANINGS.items()])


def files_block() -> str:
    width = max(len(path) for path, _ in FILES) + 2
    return "\n".join(f"{path:<{width}}{meaning}" for path, meaning in FILES)


# ---- the man page ----------------------------------------------------------------------------------------


def _roff(text: str) -> str:
    """Plain text -> roff: escape backslashes and hyphens, drop Markdown code marks, protect line starts."""
    text = text.replace("\\", "\\e").replace("-", "\\-").replace("`", "")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line for line in text.splitlines())


def man_page() -> str:
    all_commands = list(commands())
    root, subcommands = all_commands[0], all_commands[1:]
    out = [
        '.\\" Generated by scripts/generate_docs.py from the command definitions; do not edit.',
        f'.TH VSCLI 1 "" "vscli {__version__}" "User Commands"',
        ".SH NAME",
        "vscli \\- a local vector store: upload files, search them, ask a chat model about them",
        ".SH SYNOPSIS",
        ".B vscli",
        "[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
    ]
    out += _man_paragraphs([root.summary, *root.body])
    out += [".SH GLOBAL OPTIONS"] + _man_params(root.params)
    out.append(".SH COMMANDS")
    for cmd in subcommands:
        out += [f".SS {_roff(cmd.path)}", ".nf", f"\\fB{_roff(cmd.path)}\\fR {_roff(cmd.usage)}", ".fi", ".PP"]
        out += _man_paragraphs([cmd.summary, *cmd.body])
        out += _man_params(cmd.params)
    out.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        out += [".TP", f".B {name}", _roff(meaning)]
    out += [".SH FILES", "The workspace is \\fB\\-\\-home\\fR, else \\fB$VSCLI_HOME\\fR, else the platform's user data",
            "directory for vscli (\\fI~/.local/share/vscli\\fR on Linux). Inside it:"]
    for path, meaning in FILES:
        out += [".TP", f".I {_roff(path)}", _roff(meaning)]
    out += [".TP", ".I ~/.config/vscli/config.toml",
            "the config file (or \\fB$VSCLI_CONFIG\\fR); see \\fBvscli config\\fR"]
    out.append(".SH EXIT STATUS")
    for code, meaning in EXIT_MEANINGS.items():
        out += [".TP", f".B {int(code)}", _roff(meaning)]
    out += [".SH SEE ALSO", "The README and docs/cli.md in vscli's source distribution.", ""]
    return "\n".join(out)


def _man_paragraphs(paragraphs: list[str]) -> list[str]:
    out: list[str] = []
    for paragraph in paragraphs:
        keep, lines = _lines(paragraph)
        out += ([".PP", ".nf", *map(_roff, lines), ".fi"] if keep else [".PP", *map(_roff, lines)])
    return out


def _man_params(params: list[Param]) -> list[str]:
    out: list[str] = []
    for p in params:
        name = f"\\fB{_roff(p.names)}\\fR" + (f" \\fI{_roff(p.metavar)}\\fR" if p.metavar else "")
        extra = ([f"default: {p.default}"] if p.default else []) + ([f"env: {p.envvar}"] if p.envvar else [])
        out += [".TP", name, _roff(p.help + (f" ({'; '.join(extra)})" if extra else ""))]
    return out


# ---- shell completion --------------------------------------------------------------------------------------


def completion_script(shell: str) -> str:
    """The script a shell sources; it asks `vscli` itself for candidates at each Tab."""
    from typer._completion_shared import get_completion_script

    from vscli.cli import COMPLETE_VAR

    return get_completion_script(prog_name="vscli", complete_var=COMPLETE_VAR, shell=shell).rstrip() + "\n"


def generated() -> dict[str, str]:
    """Every generated file, by its path in the repository."""
    files = {f"completions/{name}": completion_script(shell) for shell, name in SHELLS.items()}
    files["man/vscli.1"] = man_page()
    files["docs/cli.md"] = markdown()
    return files


README_BLOCKS = {"environment": environment_table, "exit-codes": exit_code_table, "files": files_block}


def update_readme(text: str) -> str:
    """The README with each `<!-- generated:NAME -->` ... `<!-- /generated:NAME -->` block regenerated."""
    for name, render in README_BLOCKS.items():
        start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
        if start not in text or end not in text:
            raise ValueError(f"README.md has no {start} ... {end} block")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        body = render()
        if name == "files":
            body = "```\n" + body + "\n```"
        text = f"{head}{start}\n{body}\n{end}{tail}"
    return text
