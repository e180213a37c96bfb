"""Hostile inputs (issue 20): ids that try to become paths, store names that pose as ids, filters nested too
deep, escape sequences in a model's answer. Each test is a reproduction from the adversarial pass that
failed before the fix."""

from __future__ import annotations

import http.client
import io
import json
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import openai
import pytest

from tests.chat_server import ChatServer
from tests.conftest import EXAMPLES, assert_clean_error, run_vscli, snapshot
from tests.states import CATALOG, read_state, set_entry_text, set_meta_text, write_chunk_manifests, write_old_format
from tests.test_archive import _rewrite
from tests.test_serve import KEY, Server
from tests.test_terminal import _run_with_tty
from vscli.errors import ExitCode
from vscli.workspace import Workspace


def test_a_store_named_like_an_id_is_refused(cli) -> None:
    """`A=$(vscli create alpha); vscli create "$A"; vscli delete "$A" --yes` twice deleted the other store."""
    alpha = cli("create", "alpha").stdout.strip()
    assert_clean_error(cli("create", alpha), ExitCode.USAGE, "looks like an id")
    assert_clean_error(cli("create", "file-abc123"), ExitCode.USAGE, "looks like an id")
    assert cli("delete", alpha, "--yes").exit_code == 0
    assert_clean_error(cli("delete", alpha, "--yes"), ExitCode.NOT_FOUND)
    assert cli("create", "vs notes").exit_code == 0  # only the id grammar is refused, not the prefix


def test_ids_never_become_paths(cli, home: Path, tmp_path: Path) -> None:
    ws = Workspace(home)
    for bad in ("../../etc", "/tmp/x", "file-../x", "file-a/b", "", "file-a\nb"):
        with pytest.raises(Exception, match="no such file"):
            ws.file_dir(bad)
    for bad in ("../x", "/tmp/x", "vs_a/../../b"):
        with pytest.raises(Exception, match="no such vector store"):
            ws.store_dir(bad)
    assert_clean_error(cli("cat", "../../etc/passwd"), ExitCode.NOT_FOUND, "no such file")


@pytest.mark.parametrize("store_id", ["/tmp/vscli-escaped-store", "../../../vscli-escaped-store"])
def test_import_refuses_a_store_id_that_is_a_path(cli, dataset: Path, home: Path, tmp_path: Path,
                                                  store_id: str) -> None:
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(dataset / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    archive, evil = tmp_path / "docs.tar.gz", tmp_path / "evil.tar.gz"
    assert cli("export", "docs", str(archive)).exit_code == 0

    def with_id(name: str, blob: bytes) -> bytes:
        if name != "store/store.json":
            return blob
        return json.dumps({**json.loads(blob), "id": store_id}).encode()

    _rewrite(archive, evil, with_id)
    target = tmp_path / "target"
    assert_clean_error(cli("--home", str(target), "import", str(evil)), ExitCode.CORRUPT, "not a vscli store id")
    assert not Path("/tmp/vscli-escaped-store").exists()
    assert not (target / "stores" / store_id).resolve().exists()
    assert not [p for p in (target / "stores").iterdir() if not p.name.startswith(".")]


def test_server_refuses_file_ids_that_are_paths(home: Path, tmp_path: Path) -> None:
    """A file id in a JSON body was used as a path: another workspace's upload was read and embedded."""
    other = tmp_path / "other"
    upload = run_vscli("upload", str(EXAMPLES / "data_mining.md"), home=other)
    assert upload.returncode == 0, upload.stderr
    stolen = other / "files" / upload.stdout.decode().strip()
    relative = f"../../{other.name}/files/{stolen.name}"
    srv = Server(home, "--api-key", KEY)
    try:
        client = srv.client()
        for bad in (str(stolen), relative):
            with pytest.raises(openai.NotFoundError):
                client.vector_stores.create(name="x", file_ids=[bad])
        target = client.vector_stores.create(name="target")
        for bad in (str(stolen), relative):
            with pytest.raises(openai.NotFoundError):
                client.vector_stores.files.create(vector_store_id=target.id, file_id=bad)
            with pytest.raises(openai.NotFoundError):
                client.vector_stores.file_batches.create(vector_store_id=target.id, file_ids=[bad])
            with pytest.raises(openai.NotFoundError):
                client.files.retrieve(bad)
        with pytest.raises(openai.BadRequestError):
            client.vector_stores.create(name=target.id)  # a name that poses as an id
        with pytest.raises(openai.BadRequestError):
            client.vector_stores.update(target.id, name=target.id)
        assert [s.name for s in client.vector_stores.list()] == ["target"]
        assert client.vector_stores.files.list(vector_store_id=target.id).data == []
    finally:
        srv.stop()


def test_a_filter_nested_a_thousand_levels_is_a_clean_error(cli, home: Path) -> None:
    deep = '{"type": "eq", "key": "a", "value": 1}'
    for _ in range(1000):
        deep = '{"type": "and", "filters": [' + deep + "]}"
    assert cli("create", "docs").exit_code == 0
    assert_clean_error(cli("query", "docs", "x", "--mode", "keyword", "--filter", deep), ExitCode.USAGE,
                       "nest deeper than 16 levels")


HOSTILE_ANSWER = "Safe \x1b]0;pwned\x07\x1b[2Jtext \x1b[31mred\x1b[0m."


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_ask_strips_escape_sequences_on_a_terminal(home: Path, stream: str) -> None:
    """A model's answer set the terminal's title and cleared the screen."""
    assert run_vscli("create", "docs", home=home).returncode == 0
    assert run_vscli("upload", str(EXAMPLES), "-r", "--store", "docs", "-q", home=home).returncode == 0
    with ChatServer(answer=HOSTILE_ANSWER) as server:
        args = ["ask", "docs", "what is data mining?", "--base-url", server.base_url, "--model", "m", stream]
        rc, shown, _ = _run_with_tty(args, home, "stdout")
        assert rc == 0, shown
        assert b"\x1b" not in shown and b"\x07" not in shown and b"pwned" not in shown
        assert b"Safe text red." in shown
        piped = run_vscli(*args, home=home)  # into a file or pipe the answer is kept as the model sent it
        assert piped.returncode == 0 and HOSTILE_ANSWER.encode() in piped.stdout


def test_server_answers_4xx_to_malformed_ids_and_numbers(home: Path) -> None:
    """A NUL or a 5,000-character id in the path, or max_chunk_size_tokens 1e400, answered 500."""
    srv = Server(home, "--api-key", KEY)

    def call(method: str, path: str, body: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(srv.base_url + path, method=method,
                                         data=None if body is None else body.encode(),
                                         headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    try:
        assert call("GET", "/vector_stores/vs_%00abc")[0] == 404
        assert call("GET", "/vector_stores/" + "x" * 5000)[0] == 404
        assert call("GET", "/files/file-" + "f" * 5000)[0] == 404
        for size in ("1e400", "400.5", '"400"', "true"):
            body = ('{"name": "a", "chunking_strategy": {"type": "static", "static": '
                    '{"max_chunk_size_tokens": ' + size + ', "chunk_overlap_tokens": 10}}}')
            status, text = call("POST", "/vector_stores", body)
            assert status == 400 and "must be an integer" in text, (size, status, text)
        assert json.loads(call("GET", "/vector_stores")[1])["data"] == []
    finally:
        srv.stop()


def _raw(base_url: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
    """Send a request with exactly these headers (Host included), as a browser or a rebinding page would."""
    address = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        connection.putrequest(method, "/v1" + path, skip_host=True, skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def test_keyless_server_answers_only_local_hosts_and_origins(home: Path) -> None:
    """DNS rebinding (any Host was answered) and cross-site form posts to a server without a key."""
    srv = Server(home, "--allowed-host", "vscli.internal")
    port = urllib.parse.urlsplit(srv.base_url).port
    body = b'{"name": "from-a-web-page"}'
    json_type = {"Content-Type": "application/json"}
    try:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "vscli.internal"):
            assert _raw(srv.base_url, "GET", "/vector_stores", {"Host": host}) == 200, host
        assert _raw(srv.base_url, "GET", "/vector_stores", {"Host": f"evil.example:{port}"}) == 421
        assert _raw(srv.base_url, "POST", "/vector_stores", {"Host": "evil.example", **json_type}, body) == 421
        local = {"Host": f"127.0.0.1:{port}"}
        assert _raw(srv.base_url, "POST", "/vector_stores",
                    {**local, **json_type, "Origin": "https://evil.example"}, body) == 403
        assert _raw(srv.base_url, "POST", "/vector_stores", {**local, **json_type, "Origin": "null"}, body) == 403
        form = {**local, "Content-Type": "application/x-www-form-urlencoded"}  # a form needs no preflight
        assert _raw(srv.base_url, "POST", "/vector_stores", form, b"name=x") == 415
        assert _raw(srv.base_url, "POST", "/vector_stores", {**local, "Content-Type": "text/plain"}, body) == 415
        assert _raw(srv.base_url, "GET", "/vector_stores", {**local, "Origin": f"http://localhost:{port}"}) == 200
        assert _raw(srv.base_url, "POST", "/vector_stores", {**local, **json_type}, body) == 200
        names = [s.name for s in srv.client().vector_stores.list()]
        assert names == ["from-a-web-page"]  # only the local JSON request got through
    finally:
        srv.stop()


def test_a_server_with_a_key_answers_any_host(home: Path) -> None:
    """Behind a key a web page has no way in, so remote clients may use any name for the machine."""
    srv = Server(home, "--api-key", KEY)
    try:
        assert _raw(srv.base_url, "GET", "/vector_stores", {"Host": "my-workstation:8000",
                                                             "Authorization": f"Bearer {KEY}"}) == 200
    finally:
        srv.stop()


def test_sync_never_takes_over_an_uploaded_file(cli, tmp_path: Path) -> None:
    """A synced path whose new content equals a file added by `upload --store` gave that file a `path`, and
    deleting the synced copy then removed the user's upload from the store."""
    folder, loose = tmp_path / "notes", tmp_path / "data_mining.md"
    folder.mkdir()
    loose.write_bytes((EXAMPLES / "data_mining.md").read_bytes())
    (folder / "data_mining.md").write_text("An early draft about cats and the naps they take.")
    assert cli("create", "docs").exit_code == 0
    assert cli("sync", str(folder), "--store", "docs", "-q").exit_code == 0
    uploaded = cli("upload", str(loose), "--store", "docs", "-q").stdout.strip()
    (folder / "data_mining.md").write_bytes(loose.read_bytes())  # the draft becomes the uploaded text
    assert cli("sync", str(folder), "--store", "docs", "-q").exit_code == 0
    (folder / "data_mining.md").unlink()
    assert cli("sync", str(folder), "--store", "docs", "-q").exit_code == 0
    files = json.loads(cli("files", "docs", "--json").stdout)["data"]
    assert [(f["id"], f["attributes"], f["status"]) for f in files] == [(uploaded, {}, "completed")]


def test_concurrent_uploads_of_the_same_bytes_land_once(home: Path, tmp_path: Path) -> None:
    """Two `upload --store` of the same bytes under different names both landed when run at once (3 of 3
    runs); sequentially the second is de-duplicated. Now the check is made under the store's lock."""
    from tests.test_reliability import popen_vscli

    assert run_vscli("create", "docs", home=home).returncode == 0
    copies = []
    for name in ("a.md", "b.md", "c.md", "d.md", "e.md", "f.md"):
        copies.append(tmp_path / name)
        copies[-1].write_bytes((EXAMPLES / "data_mining.md").read_bytes())
    procs = [popen_vscli("upload", str(path), "--store", "docs", "-q", home=home) for path in copies]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [o[1] for o in outputs]
    printed = {o[0].decode().strip() for o in outputs}
    files = json.loads(run_vscli("files", "docs", "--json", home=home).stdout)["data"]
    assert [f["id"] for f in files] == list(printed) and files[0]["status"] == "completed"


def test_devices_fifos_and_endless_stdin_are_refused(home: Path, tmp_path: Path) -> None:
    """`upload /dev/zero` and `yes | vscli upload -` read until MemoryError; a FIFO without a writer hung."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        result = run_vscli("upload", path, home=home, timeout=60)
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert result.stderr.decode().startswith("Error: ") and b"not a regular file" in result.stderr
    endless = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        result = subprocess.run([sys.executable, "-m", "vscli", "upload", "-"], stdin=endless.stdout,
                                capture_output=True, timeout=60,
                                env={**os.environ, "VSCLI_HOME": str(home), "VSCLI_MAX_FILE_BYTES": "10000"})
    finally:
        endless.kill()
        endless.wait()
    assert result.returncode == ExitCode.USAGE and b"over the limit of 10000 bytes" in result.stderr, result.stderr
    assert not (home / "files").exists() or not any(p.name.startswith("file-") for p in (home / "files").iterdir())


def test_names_that_are_not_utf8(cli, tmp_path: Path) -> None:
    """A file name that is not UTF-8 crashed upload, upload -r and sync (UnicodeEncodeError, exit 1), and
    that folder could never sync again."""
    folder = tmp_path / "notes"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.md"), "wb") as f:
        f.write(b"Notes on espresso machines, grinders and the roasting of coffee beans.")
    (folder / "tea.md").write_text("Notes on green tea.")
    odd = os.fsdecode(os.path.join(os.fsencode(folder), b"caf\xe9.md"))
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", odd).exit_code == 0
    assert cli("upload", "-r", str(folder)).exit_code == 0
    uploads = {u["filename"] for u in json.loads(cli("uploads", "--json").stdout)["data"]}
    assert uploads == {"caf\\xe9.md", "tea.md"}
    for _ in range(2):  # the second run finds everything in place
        result = cli("sync", str(folder), "--store", "docs", "--json")
        assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["unchanged"] == 2
    paths = {f["attributes"]["path"] for f in json.loads(cli("files", "docs", "--json").stdout)["data"]}
    assert paths == {"caf\\xe9.md", "tea.md"}
    assert json.loads(cli("query", "docs", "espresso", "--json").stdout)["data"][0]["filename"] == "caf\\xe9.md"


def test_the_bytes_stored_are_the_bytes_checked(cli, home: Path, tmp_path: Path) -> None:
    """A file that changed between the check and the store (text, then empty) was stored unchecked: a
    0-byte upload. A writer flips the file while uploads run; no upload may be other than the text."""
    import threading

    path, text = tmp_path / "flip.md", b"Notes on the tides, written and emptied over and over."
    path.write_bytes(text)
    done = threading.Event()

    def flip() -> None:
        while not done.is_set():
            path.write_bytes(b"")
            path.write_bytes(text)

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        codes = [cli("upload", str(path), "--filename", f"flip-{i}.md").exit_code for i in range(40)]
    finally:
        done.set()
        flipper.join()
    assert set(codes) <= {0, ExitCode.USAGE}
    stored = [u for u in json.loads(cli("uploads", "--json").stdout)["data"]]
    assert stored and all(u["bytes"] == len(text) for u in stored), [u["bytes"] for u in stored]


def test_arguments_that_are_not_utf8_are_usage_errors(cli, home: Path, tmp_path: Path) -> None:
    """Invalid UTF-8 in a store name, --metadata, an --attr key, --filename or the query text exited 1
    ("unexpected UnicodeEncodeError"), and --attr stored the upload before failing."""
    bad = "bad\udcff"  # how Python hands over the argument bytes b"bad\xff"
    note = tmp_path / "note.md"
    note.write_text("Notes on the tides and the moon.")
    assert cli("create", "docs").exit_code == 0
    before = snapshot(home)
    for args in (("create", bad), ("create", "other", "--metadata", f"k={bad}"),
                 ("upload", str(note), "--store", "docs", "--attr", f"{bad}=1"),
                 ("upload", str(note), "--filename", f"{bad}.md"),
                 ("query", "docs", bad), ("query", "docs", bad, "--mode", "keyword"),
                 ("query", "docs", "tides", "--where", f"{bad}=1")):
        assert_clean_error(cli(*args), ExitCode.USAGE, "not valid UTF-8")
    assert snapshot(home) == before
    result = run_vscli("create", os.fsdecode(b"bad\xff"), home=home)  # and from a real argv
    assert result.returncode == ExitCode.USAGE and b"not valid UTF-8" in result.stderr, result.stderr


def test_newlines_and_tabs_in_names_do_not_split_rows(cli, tmp_path: Path) -> None:
    """A newline in a file or store name split a row of tab-separated `ls`/`uploads` output."""
    note = tmp_path / "a\nb\\c.md"
    note.write_text("Notes on the tides.")
    assert cli("create", "two\nlines\tand a tab").exit_code == 0
    assert cli("upload", str(note)).exit_code == 0
    stores, uploads = cli("ls").stdout.splitlines(), cli("uploads").stdout.splitlines()
    assert len(stores) == 2 and stores[1].split("\t")[1] == "two\\nlines\\tand a tab"
    assert len(uploads) == 2 and uploads[1].split("\t")[1] == "a\\nb\\\\c.md"
    assert len(stores[1].split("\t")) == len(stores[0].split("\t"))


def test_a_chunked_upload_stops_at_the_limit(home: Path) -> None:
    """The 413 check read Content-Length only: a chunked upload of 400 MB with VSCLI_MAX_FILE_BYTES=10000
    spooled ~350 MB to /tmp before the 413. Now the body is counted as it streams."""
    server = Server(home, env={"VSCLI_MAX_FILE_BYTES": "10000"})
    sent = 0
    block = b"x" * (1 << 16)
    boundary = "vscli-test-boundary"

    def body():
        nonlocal sent
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
               f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
               "Content-Type: text/plain\r\n\r\n").encode()
        while sent < 200 * 1024 * 1024:
            sent += len(block)
            yield block

    try:
        address = urllib.parse.urlsplit(server.base_url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        try:
            connection.request("POST", "/v1/files", body=body(), encode_chunked=True,
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            response = connection.getresponse()
            status, answer = response.status, json.loads(response.read())
        except (BrokenPipeError, ConnectionResetError):
            connection.close()
            status, answer = None, None  # cut off mid-body; the answer may be lost with the connection
        assert sent < 20 * 1024 * 1024, sent  # the server stopped reading near the limit, not at the end
        if status is not None:
            assert status == 413 and "10000" in answer["error"]["message"], answer
        with urllib.request.urlopen(f"{server.base_url}/files") as listing:
            assert json.loads(listing.read())["data"] == []
    finally:
        server.stop()
    leftovers = [p for p in (home / "files").iterdir() if not p.name.startswith("registry.sqlite")]
    assert leftovers == [], leftovers


@pytest.mark.parametrize("model,stream", [("drip-model", "--no-stream"), ("keepalive-model", "--stream"),
                                          ("endless-model", "--stream")])
def test_ask_timeout_is_a_deadline_for_the_whole_answer(cli, home: Path, model: str, stream: str) -> None:
    """`ask --timeout 5` bounded each read, not the call: endpoints that drip a byte every 2 s, send SSE
    keep-alive comments, or stream forever ran past 60 s. (The chat server gives up after 120 s.)"""
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(EXAMPLES / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    with ChatServer() as chat:
        result = run_vscli("ask", "docs", "what is data mining?", "--base-url", chat.base_url, "--model", model,
                           "--timeout", "3", stream, home=home, timeout=60)
    assert result.returncode == ExitCode.ENDPOINT, result.stderr
    assert result.stderr.decode().startswith("Error: ") and b"did not answer within 3s" in result.stderr


def test_ask_max_tokens_stops_an_endless_stream(cli, home: Path) -> None:
    """`--max-tokens 10` did not stop an endpoint that ignores it and streams without end."""
    assert cli("create", "docs").exit_code == 0
    assert cli("upload", str(EXAMPLES / "data_mining.md"), "--store", "docs", "-q").exit_code == 0
    with ChatServer() as chat:
        result = run_vscli("ask", "docs", "what is data mining?", "--base-url", chat.base_url, "--model",
                           "endless-model", "--max-tokens", "10", "--stream", "--timeout", "50", home=home,
                           timeout=60)
    assert result.returncode == 0, result.stderr
    answer = result.stdout.decode().split("\nSources:")[0]
    assert answer.startswith("and on ") and len(answer) < 200, answer
    assert b"cut at 10 tokens" in result.stderr


# ---- manifests of the wrong shape, and what doctor makes of them (items 15, 17, 18, 19, 20) -----------


@pytest.fixture
def docs_store(cli, home: Path) -> Path:
    assert cli("create", "docs").exit_code == 0
    result = cli("upload", str(EXAMPLES), "-r", "--store", "docs", "-q", "--attr", "team=research")
    assert result.exit_code == 0, result.stderr
    return next((home / "stores").iterdir())


def _top_file(cli) -> str:
    result = cli("query", "docs", "what is data mining?", "-k", "1", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["data"][0]["filename"]


def _damage_entry_int(state: dict) -> None:
    state["files"][next(iter(state["files"]))] = 5


def _damage_no_vscli_key(state: dict) -> None:
    del next(iter(state["files"].values()))["vscli"]


def _damage_generation(state: dict) -> None:
    state["generation"] = "x"


def _damage_segments(state: dict) -> None:
    state["segments"] = [{"n": "../../etc/passwd", "vectors": 1, "kind": "flat (exact)"}]


def _damage_serial_path(state: dict) -> None:
    next(iter(state["files"].values()))["vscli"]["serial"] = "/etc/passwd"


def _damage(store_dir: Path, damage, fmt: str) -> None:
    """Damage the store's state in its catalog (row by row, as a disk or a hand would), or written as a
    files.json of vscli 0.1; ``None``: the state is lost altogether."""
    state = read_state(store_dir)
    if damage is None:
        write_old_format(store_dir, state)
        (store_dir / "files.json").unlink()
        return
    if damage == "garbage":
        write_old_format(store_dir, state)  # no catalog, nor its WAL
        (store_dir / "files.json").unlink()
        (store_dir / CATALOG).write_bytes(b"not a database at all\n" * 200)
        return
    before = json.loads(json.dumps(state))
    damage(state)
    if fmt == "files.json":
        write_old_format(store_dir, state)
        return
    for key, value in state.items():
        if key != "files" and value != before.get(key):
            set_meta_text(store_dir, key, json.dumps(value))
    for file_id, entry in state["files"].items():
        if entry != before["files"][file_id]:
            set_entry_text(store_dir, file_id, json.dumps(entry))


@pytest.mark.parametrize(("damage", "fmt"), [
    *((damage, fmt) for damage in (_damage_entry_int, _damage_no_vscli_key, _damage_generation, _damage_segments,
                                   _damage_serial_path) for fmt in ("catalog", "files.json")),
    ("garbage", "catalog"), (None, "catalog")])  # nothing of the state left to read: the same in either
def test_a_state_of_the_wrong_shape_is_reported_and_rebuilt(cli, docs_store: Path, damage, fmt: str) -> None:
    """Manifests of the wrong structure crashed query/status/doctor and doctor --repair with TypeError or
    KeyError (exit 1); files.json deleted: queries said doctor --repair recovers, but it exited 7. The
    same holds of the catalog: a damaged row or key is CorruptData where it is read (`status` reads no
    file's row, so a damaged entry shows in `files`, queries that hit it, and doctor)."""
    _damage(docs_store, damage, fmt)
    whole_state_read = fmt == "files.json" or damage in (None, "garbage", _damage_generation, _damage_segments)
    for args in (("query", "docs", "data mining"), ("status", "docs"), ("files", "docs")):
        if whole_state_read or args[0] == "files":
            assert_clean_error(cli(*args), ExitCode.CORRUPT)
    result = cli("doctor", "docs")
    assert result.exit_code == ExitCode.CORRUPT and "rebuild the catalog" in result.stdout, result.stdout
    result = cli("doctor", "docs", "--repair")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert cli("doctor", "docs").exit_code == 0
    assert _top_file(cli) == "data_mining.md"
    files = json.loads(cli("files", "docs", "--json").stdout)["data"]
    assert len(files) == 6 and all(f["status"] == "completed" for f in files)
    assert (docs_store / CATALOG).exists() and not (docs_store / "files.json").exists()
    if damage is not None:
        kept = "files.json" if fmt == "files.json" else CATALOG
        assert list(docs_store.glob(f"{kept}.damaged-*")), "the damaged state is kept"


def test_a_chunk_manifest_of_the_wrong_shape(cli, docs_store: Path) -> None:
    """In a store whose chunks are kept as vscli 0.3 kept them, a manifest per file."""
    write_chunk_manifests(docs_store)
    chunks = sorted((docs_store / "chunks").glob("*.json"))
    for path in chunks:
        path.write_text(json.dumps({"chunks": 5}))
    assert_clean_error(cli("query", "docs", "data mining"), ExitCode.CORRUPT)
    assert cli("doctor", "docs").exit_code == ExitCode.CORRUPT
    assert cli("doctor", "docs", "--repair").exit_code == 0
    files = json.loads(cli("files", "docs", "--json").stdout)["data"]
    assert {f["status"] for f in files} == {"failed"}  # attach again re-embeds them


def test_a_wrong_dimension_in_store_json_believes_the_index(cli, docs_store: Path) -> None:
    """doctor --repair threw away an intact index and marked every file failed; attach then failed with
    an AssertionError."""
    config = json.loads((docs_store / "store.json").read_text())
    config["vscli"]["dimension"] = 512
    (docs_store / "store.json").write_text(json.dumps(config))
    assert_clean_error(cli("query", "docs", "data mining"), ExitCode.CORRUPT)
    result = cli("doctor", "docs")
    assert result.exit_code == ExitCode.CORRUPT and "512" in result.stdout and "new empty index" not in result.stdout
    assert cli("doctor", "docs", "--repair").exit_code == 0
    assert json.loads((docs_store / "store.json").read_text())["vscli"]["dimension"] == 384
    files = json.loads(cli("files", "docs", "--json").stdout)["data"]
    assert {f["status"] for f in files} == {"completed"} and _top_file(cli) == "data_mining.md"


def test_counts_kept_by_the_catalog_that_drifted_are_found_and_counted_again(cli, docs_store: Path) -> None:
    """`status` reads the files per status from the catalog's totals (kept by triggers): totals changed
    behind vscli's back would make it lie; doctor finds that and --repair counts them again."""
    conn = sqlite3.connect(docs_store / CATALOG)
    conn.execute("UPDATE totals SET files = files + 5 WHERE status = 'completed'")
    conn.commit()
    conn.close()
    assert json.loads(cli("status", "docs", "--json").stdout)["file_counts"]["completed"] == 11
    result = cli("doctor", "docs")
    assert result.exit_code == ExitCode.CORRUPT and "counts of files" in result.stdout, result.stdout
    assert cli("doctor", "docs", "--repair").exit_code == 0
    assert cli("doctor", "docs").exit_code == 0
    assert json.loads(cli("status", "docs", "--json").stdout)["file_counts"]["completed"] == 6


@pytest.mark.parametrize("file_json", ["intact", "damaged"])
def test_a_damaged_upload_row_is_found_and_written_again(cli, docs_store: Path, home: Path, file_json: str) -> None:
    """A corrupt upload file.json: `files` and vector queries exited 7 while `doctor` said ok. The same
    of a damaged row of the upload registry: doctor finds it and writes it again from the upload's
    file.json, or, that damaged too, from its bytes (the damaged file.json kept)."""
    folder = next(p for p in (home / "files").iterdir()
                  if p.name.startswith("file-") and b"data_mining" in (p / "file.json").read_bytes())
    bad = '{"id": 5, "filename": "data_mining.md", "bytes": "many"'
    with sqlite3.connect(home / "files" / "registry.sqlite") as conn:
        conn.execute("UPDATE uploads SET object = ? WHERE id = ?", (bad, folder.name))
    conn.close()
    if file_json == "damaged":
        (folder / "file.json").write_text(bad)
    listed = cli("files", "docs")  # the store keeps each upload's name: the listing reads no upload
    assert listed.exit_code == 0 and "data_mining.md" in listed.stdout
    assert_clean_error(cli("cat", folder.name), ExitCode.CORRUPT, "upload registry")
    assert cli("doctor", "docs").exit_code == ExitCode.CORRUPT
    assert cli("doctor", "docs", "--repair").exit_code == 0
    assert cli("files", "docs").exit_code == 0 and _top_file(cli) == "data_mining.md"
    assert cli("cat", folder.name).exit_code == 0
    assert (folder / "file.json.damaged").exists() == (file_json == "damaged")


def test_one_damaged_store_does_not_hide_the_others(cli, docs_store: Path, home: Path) -> None:
    """One corrupt store.json made `vscli ls` fail for the whole workspace."""
    bad = cli("create", "other").stdout.strip()
    (home / "stores" / bad / "store.json").write_text("{not json")
    result = cli("ls")
    assert result.exit_code == ExitCode.CORRUPT
    rows = [line.split("\t") for line in result.stdout.splitlines()[1:]]
    assert [(r[1], r[2]) for r in rows] == [("docs", "completed"), ("?", "damaged")]
    assert bad in result.stderr and "warning" in result.stderr
    assert [s["name"] for s in json.loads(cli("ls", "--json").stdout)["data"]] == ["docs"]
    assert _top_file(cli) == "data_mining.md"  # names still resolve


# ---- archives: bounded reads, checked shapes, leftovers of killed runs (items 11, 15, 23, 24) ----------


@pytest.fixture
def archive(cli, docs_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "docs.tar.gz"
    assert cli("export", "docs", str(path)).exit_code == 0
    assert cli("delete", "docs", "--yes").exit_code == 0
    return path


def _forged(archive: Path, tmp_path: Path, name: str, change) -> Path:
    evil = tmp_path / "evil.tar.gz"
    _rewrite(archive, evil, lambda member, blob: change(blob) if member == name else blob)
    return evil


def test_an_archive_whose_manifest_unpacks_huge_is_refused_unread(cli, archive: Path, home: Path,
                                                                  tmp_path: Path) -> None:
    """A 1.5 MB archive whose manifest unpacks to 1.5 GB took 3.1 GB of memory."""
    import tarfile

    evil = tmp_path / "bomb.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("vscli-archive.json")
        info.size = 200 * 1024 * 1024

        class Spaces(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer) -> int:  # type: ignore[override]
                buffer[:] = b" " * len(buffer)
                return len(buffer)

        tar.addfile(info, io.BufferedReader(Spaces()))
    assert evil.stat().st_size < 1024 * 1024
    before = snapshot(home)
    assert_clean_error(cli("import", str(evil)), ExitCode.CORRUPT, "more than such a file can hold")
    assert snapshot(home) == before


@pytest.mark.parametrize("name,change,fragment", [
    ("store/files.json", lambda blob: json.dumps({**json.loads(blob), "files": []}).encode(), "no table of files"),
    ("store/store.json", lambda blob: json.dumps({**json.loads(blob), "id": 5}).encode(), "not a vscli store id"),
    ("vscli-archive.json", lambda blob: b"[1, 2]", "not a vscli store archive"),
])
def test_archives_with_manifests_of_the_wrong_shape(cli, archive: Path, home: Path, tmp_path: Path,
                                                    name: str, change, fragment: str) -> None:
    evil = _forged(archive, tmp_path, name, change)
    before = snapshot(home)
    result = cli("import", str(evil))
    assert result.exit_code in (ExitCode.CORRUPT, ExitCode.USAGE) and fragment in result.stderr, result.stderr
    assert_clean_error(result, result.exit_code)
    assert snapshot(home) == before


def test_an_archive_with_a_chunk_serial_that_is_a_path(cli, archive: Path, home: Path, tmp_path: Path) -> None:
    """import accepted a non-integer chunk serial (an absolute path); the imported store was damaged."""
    def serial_path(blob: bytes) -> bytes:
        state = json.loads(blob)
        next(iter(state["files"].values()))["vscli"]["serial"] = "/etc/passwd"
        return json.dumps(state).encode()

    evil = _forged(archive, tmp_path, "store/files.json", serial_path)
    before = snapshot(home)
    assert_clean_error(cli("import", str(evil)), ExitCode.CORRUPT, "not a positive integer")
    assert snapshot(home) == before


def test_an_import_killed_midway_is_swept_by_the_next(archive: Path, home: Path) -> None:
    """kill -9 during `import` left ~41 MB of `.import-*` folders; a rerun did not clean them."""
    import signal
    import time

    from tests.test_reliability import popen_vscli

    data = archive.read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "vscli", "import", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "VSCLI_HOME": str(home)})
    assert proc.stdin is not None
    proc.stdin.write(data[: len(data) // 2])  # half the archive: it stalls waiting for the rest
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not list((home / "stores").glob(".import-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((home / "stores").glob(".import-*")) and list((home / "files").glob(".import-*"))
    rerun = popen_vscli("import", str(archive), home=home)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read() if rerun.stderr else ""
    assert not list((home / "stores").glob(".import-*")) and not list((home / "files").glob(".import-*"))


def test_uploads_added_by_a_killed_import_are_taken_back(cli, home: Path, tmp_path: Path) -> None:
    """A kill -9 while import adopts uploads left them in the workspace (orphans no store names). Its
    staging folder records them; the next import finds its process dead and takes them back out."""
    from vscli.archive import ADOPTED, OWNER, sweep_imports

    note = tmp_path / "note.md"
    note.write_text("Notes an import had added.")
    orphan = cli("upload", str(note)).stdout.strip()
    kept = cli("upload", str(EXAMPLES / "data_mining.md")).stdout.strip()
    assert cli("create", "docs").exit_code == 0
    assert cli("attach", "docs", kept, "-q").exit_code == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for parent in (home / "stores", home / "files"):
        folder = parent / ".import-killed"
        folder.mkdir()
        (folder / OWNER).write_text(json.dumps({"pid": dead.pid, "started": 1.0}))
    (home / "stores" / ".import-killed" / ADOPTED).write_text(f"{orphan}\n{kept}\n")
    assert sorted(sweep_imports(Workspace(home))) == [".import-killed", ".import-killed"]
    uploads = {u["id"] for u in json.loads(cli("uploads", "--json").stdout)["data"]}
    assert uploads == {kept}  # the orphan is gone; the upload a store uses stays


def test_an_export_killed_midway_leaves_nothing_after_the_next(cli, docs_store: Path, tmp_path: Path) -> None:
    """kill -9 during `export` left a hidden ~18 MB `.tmp` beside the destination; a rerun kept it."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    dest = tmp_path / "out" / "docs.tar.gz"
    dest.parent.mkdir()
    leftover = dest.parent / f".docs.tar.gz.{dead.pid}.abc123.tmp"
    leftover.write_bytes(b"x" * 1000)
    alive = dest.parent / f".docs.tar.gz.{os.getpid()}.def456.tmp"  # a live writer's: not ours to touch
    alive.write_bytes(b"x")
    assert cli("export", "docs", str(dest)).exit_code == 0
    assert not leftover.exists() and alive.exists()
