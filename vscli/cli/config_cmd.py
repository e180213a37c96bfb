"""`vscli config set|get|list|unset|path`: the TOML config file for ask's endpoint settings."""


from typing import Annotated

import typer

from vscli import config
from vscli.cli import complete, render
from vscli.cli.app import app
from vscli.cli.stores import JsonOpt
from vscli.errors import NotFound

config_app = typer.Typer(help="Read and write the config file (endpoint, key, model, top_k, ...).\n\n\b\n"
                         "Example: vscli config set base_url http://localhost:11434/v1",
                         no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigJson = Annotated[bool, typer.Option("--json", help="Print the result as a JSON object.")]
KeyArg = Annotated[str, typer.Argument(metavar="KEY", help=f"One of: {', '.join(config.KEYS)}.",
                                       autocompletion=complete.config_keys)]


@config_app.command("set")
def set_command(key: KeyArg, value: Annotated[str, typer.Argument(metavar="VALUE")], as_json: ConfigJson = False
                ) -> None:
    """Set a key (the file is created with mode 0600).

    \b
    Example: vscli config set model llama3.2
    """
    config.set_value(key, value)
    if as_json:
        render.emit_json({"key": key, "value": config.mask(key, config.get_value(key)),
                          "path": str(config.config_path())})
        return
    render.message(f"set {key} in {config.config_path()}")


@config_app.command("get")
def get_command(key: KeyArg, as_json: ConfigJson = False) -> None:
    """Print a key's value from the config file (exit 3 if it is not set).

    \b
    Example: vscli config get base_url
    """
    value = config.get_value(key)
    if value is None:
        raise NotFound(f"{key} is not set in {config.config_path()}")
    if as_json:
        render.emit_json({"key": key, "value": value})
        return
    render.emit_line(str(value))


@config_app.command("unset")
def unset_command(key: KeyArg, as_json: ConfigJson = False) -> None:
    """Remove a key from the config file.

    \b
    Example: vscli config unset api_key
    """
    if not config.unset_value(key):
        raise NotFound(f"{key} is not set in {config.config_path()}")
    if as_json:
        render.emit_json({"key": key, "deleted": True})
        return
    render.message(f"unset {key}")


@config_app.command("list")
def list_command(as_json: JsonOpt = False) -> None:
    """Every key with its effective value and where it comes from (API keys masked).

    \b
    Example: vscli config list
    """
    rows = config.explain()
    if as_json:
        render.emit_json({r["key"]: {"value": config.mask(r["key"], r["value"]), "source": r["source"]}
                          for r in rows})
        return
    render.table(["KEY", "VALUE", "SOURCE"],
                 [[r["key"], config.mask(r["key"], r["value"]), r["source"]] for r in rows])


@config_app.command("path")
def path_command(as_json: ConfigJson = False) -> None:
    """Print the config file's path.

    \b
    Example: vscli config path
    """
    path = config.config_path()
    if as_json:
        render.emit_json({"path": str(path), "exists": path.is_file()})
        return
    render.emit_line(str(path))
