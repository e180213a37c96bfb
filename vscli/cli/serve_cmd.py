"""The serve command: OpenAI's Files and Vector Stores API over this workspace, for SDKs and agents."""


import ipaddress
from typing import Annotated, Optional

import typer

from vscli.cli import render
from vscli.cli.app import app, workspace

API_KEY_ENV = "VSCLI_SERVE_API_KEY"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind; anything but loopback needs an API "
                                      "key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 8000,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", envvar=API_KEY_ENV, show_envvar=True,
        help="Require `Authorization: Bearer KEY` on every /v1 request.")] = None,
    allowed_host: Annotated[Optional[list[str]], typer.Option(
        "--allowed-host", metavar="NAME", help="Without an API key, also answer requests addressed to this "
        "host name (a reverse proxy's; repeatable). Loopback names are always allowed.")] = None,
) -> None:
    """Serve OpenAI's Files and Vector Stores API on this workspace (point an OpenAI SDK's base_url at it).

    The API is under /v1 and its OpenAPI page at /docs. Runs until Ctrl-C.

    \b
    Example: vscli serve --port 8000
    Then:    openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="x").vector_stores.list()
    """
    import socket

    from vscli.errors import InvalidInput

    if not _loopback(host) and not api_key:
        raise InvalidInput(f"refusing to serve on {host} without an API key: anyone who can reach it could "
                           f"read and change the workspace; set --api-key or ${API_KEY_ENV}")
    if api_key is not None and len(api_key) < 8:
        raise InvalidInput("the API key must be at least 8 characters")
    if not 0 <= port <= 65535:
        raise InvalidInput(f"--port must be between 0 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections queue from now on, so clients may start as soon as we print
    except OSError as exc:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    import uvicorn

    from vscli.server.app import create_app

    ws = workspace()
    ws.ensure()
    import tempfile

    # Request bodies the multipart parser spools past 1 MB go beside the uploads (unnamed temporary
    # files: nothing is left if the server dies), not to /tmp, which may be a small RAM disk.
    tempfile.tempdir = str(ws.files_dir)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    render.message(f"serving {ws.root} on http://{shown}:{bound_port}/v1 (API docs: http://{shown}:{bound_port}/docs)"
                   + ("" if api_key else "; no API key") + ". Ctrl-C stops.")
    from vscli import usage

    usage.set_source("serve")  # this process's usage lines: its requests, and what its thread embeds
    application = create_app(ws, api_key, bound_host=host, allowed_hosts=allowed_host or ())
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", access_log=False, lifespan="off"))
    server.run(sockets=[sock])
