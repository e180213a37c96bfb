"""File formats, with real files made here: PDF (pages), HTML, DOCX, encodings, refused types."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import assert_clean_error, snapshot
from vscli.chunking import chunk_text
from vscli.errors import ExitCode
from vscli.extract import extract


def make_pdf(pages: list[str]) -> bytes:
    """A minimal, valid PDF with one line of Helvetica text per page (an empty string: no text)."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode())
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode() if text else b""
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


PAGES = ["Introduction to the tidal survey of the northern estuary.",
         "Methods: salinity was measured every hour with calibrated probes.",
         "Results: the lighthouse keeper recorded a storm surge of two metres on page three."]

HTML = """<!DOCTYPE html><html><head><title>Quokka Field Guide</title>
<style>body { color: red; } .secret { display: none }</style>
<script>var tracking = "never index this script text";</script></head>
<body><nav>Home | About</nav><h1>Quokkas</h1>
<p>Quokkas are small marsupials that live on <b>Rottnest Island</b>.</p>
<noscript>enable javascript please</noscript></body></html>"""


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Sourdough Notes"
    document.add_heading("Sourdough starter", level=1)
    document.add_paragraph("Feed the starter with equal weights of rye flour and water every twelve hours.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Hydration"
    table.rows[0].cells[1].text = "seventy percent"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.fixture
def store(cli) -> str:
    assert cli("create", "docs").exit_code == 0
    return "docs"


def test_pdf_text_and_page_numbers(cli, store, tmp_path: Path) -> None:
    extracted = extract(make_pdf(PAGES), "survey.pdf")
    assert [n for n, _, _ in extracted.pages] == [1, 2, 3]
    for (_number, start, end), text in zip(extracted.pages, PAGES, strict=False):
        assert extracted.text[start:end] == text
    pdf = tmp_path / "survey.pdf"
    pdf.write_bytes(make_pdf(PAGES))
    assert cli("create", "small", "--chunk-size", "100", "--chunk-overlap", "0").exit_code == 0
    assert cli("upload", str(pdf), "--store", "small").exit_code == 0
    page = json.loads(cli("query", "small", "how high was the storm surge?", "--json").stdout)
    assert page["data"][0]["filename"] == "survey.pdf" and page["data"][0]["pages"] == [1, 2, 3]
    human = cli("query", "small", "storm surge", "-k", "1").stdout
    assert human.startswith("1. survey.pdf (pages 1-3)")
    file_id = page["data"][0]["file_id"]
    assert cli("cat", file_id).stdout_bytes == pdf.read_bytes()
    assert "storm surge of two metres" in cli("cat", file_id, "--text").stdout


def test_pdf_chunks_know_their_pages(tmp_path: Path) -> None:
    long_pages = [" ".join([f"Page {i} sentence about topic {i}."] * 60) for i in (1, 2, 3)]
    extracted = extract(make_pdf(long_pages), "long.pdf")
    chunks = chunk_text(extracted.text, 100, 0)
    spans = [[n for n, s, e in extracted.pages if s < c.end and e > c.start] for c in chunks]
    assert spans[0] == [1] and spans[-1] == [3] and any(s == [2] for s in spans)


@pytest.mark.parametrize("kind,fragment", [("encrypted", "encrypted PDF"), ("image-only", "no extractable text"),
                                           ("broken", "not a readable PDF")])
def test_unreadable_pdfs_are_refused(cli, store, tmp_path: Path, home: Path, kind: str, fragment: str) -> None:
    if kind == "encrypted":
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter()
        for p in PdfReader(io.BytesIO(make_pdf(PAGES))).pages:
            writer.add_page(p)
        writer.encrypt("s3cret")
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    elif kind == "image-only":
        data = make_pdf(["", ""])
    else:
        data = b"%PDF-1.4\nthis is not really a pdf\n%%EOF"
    path = tmp_path / f"{kind}.pdf"
    path.write_bytes(data)
    before = snapshot(home)
    assert_clean_error(cli("upload", str(path), "--store", store), ExitCode.USAGE, fragment)
    assert snapshot(home) == before


def test_html_visible_text_and_title(cli, store, tmp_path: Path) -> None:
    extracted = extract(HTML.encode(), "guide.html")
    assert extracted.title == "Quokka Field Guide"
    assert extracted.text.startswith("Quokka Field Guide\n\n")
    assert "Rottnest Island" in extracted.text and "Quokkas" in extracted.text
    for hidden in ("tracking", "color: red", "javascript", "<p>", "<b>"):
        assert hidden not in extracted.text
    page = tmp_path / "guide.html"
    page.write_text(HTML)
    assert cli("upload", str(page), "--store", store).exit_code == 0
    result = json.loads(cli("query", store, "which marsupial lives on Rottnest?", "--json").stdout)
    assert result["data"][0]["filename"] == "guide.html"
    assert "never index" not in result["data"][0]["content"][0]["text"]
    # Sniffed by content, too: HTML saved without an .html name.
    assert extract(HTML.encode(), "download").title == "Quokka Field Guide"


def test_docx(cli, store, tmp_path: Path) -> None:
    data = make_docx()
    extracted = extract(data, "notes.docx")
    assert extracted.title == "Sourdough Notes"
    assert extracted.text.startswith("Sourdough starter\n\nFeed the starter")
    assert "Hydration | seventy percent" in extracted.text
    path = tmp_path / "notes.docx"
    path.write_bytes(data)
    assert cli("upload", str(path), "--store", store).exit_code == 0
    result = json.loads(cli("query", store, "how often do I feed the starter?", "--json").stdout)
    assert result["data"][0]["filename"] == "notes.docx"


def test_text_encodings(cli, store, tmp_path: Path, home: Path) -> None:
    utf16 = tmp_path / "notes-utf16.txt"
    utf16.write_bytes("Crème brûlée needs a blowtorch.".encode("utf-16"))
    assert extract(utf16.read_bytes(), utf16.name).text == "Crème brûlée needs a blowtorch."
    latin = tmp_path / "recette.txt"
    latin.write_bytes("Crème brûlée: caramélisez le sucre au chalumeau.".encode("latin-1"))
    result = cli("upload", str(latin), "--store", store)
    assert_clean_error(result, ExitCode.USAGE, "--encoding")
    ok = cli("upload", str(latin), "--store", store, "--encoding", "latin-1")
    assert ok.exit_code == 0, ok.stderr
    file_id = ok.stdout.strip()
    assert cli("cat", file_id).stdout_bytes == latin.read_bytes()
    assert cli("cat", file_id, "--text").stdout.strip() == "Crème brûlée: caramélisez le sucre au chalumeau."
    assert "encoding" not in json.loads(cli("uploads", "--json").stdout)["data"][0]
    assert_clean_error(cli("upload", str(latin), "--encoding", "klingon"), ExitCode.USAGE, "unknown encoding")


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "inside an archive")
    return out.getvalue()


@pytest.mark.parametrize("name,data,kind", [
    ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image"),
    ("photo.dat", b"\xff\xd8\xff\xe0" + b"\x00" * 64, "image"),
    ("picture.bin", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image"),  # the bytes win over the name
    ("bundle.zip", _zip(), "zip archive"),
    ("tool", b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "executable"),
    ("setup.exe", b"MZ\x90\x00" + b"\x00" * 64, "executable"),
    ("data.tar.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 64, "archive"),
])
def test_unsupported_types_are_refused(cli, store, tmp_path: Path, home: Path, name: str, data: bytes,
                                       kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    before = snapshot(home)
    result = cli("upload", str(path), "--store", store)
    assert_clean_error(result, ExitCode.USAGE, "unsupported file type")
    assert kind in result.stderr
    assert snapshot(home) == before


def test_source_and_config_files_are_text(cli, store, tmp_path: Path) -> None:
    for name, content in [("app.py", "def handler(event):\n    return 'ok'\n"),
                          ("settings.toml", "[db]\nport = 5432\n"),
                          ("notes.rst", "Title\n=====\n\nReStructuredText body.\n"), ("Makefile", "all:\n\techo hi\n")]:
        (tmp_path / name).write_text(content)
        assert extract((tmp_path / name).read_bytes(), name).text == content
        assert cli("upload", str(tmp_path / name), "--store", store).exit_code == 0


def test_markdown_chunks_start_at_headings() -> None:
    section = "## Section {n}\n\n" + "This paragraph explains one more detail of the topic at hand. " * 11 + "\n"
    text = "".join(section.format(n=n) for n in range(8))
    chunks = chunk_text(text, 200, 0)
    assert all(c.text.startswith("## Section") for c in chunks), [c.text[:30] for c in chunks]
