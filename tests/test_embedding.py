"""The real model: windows fit its 256-piece limit, text past that limit is still searchable, and the
ONNX path that ingest runs on gives sentence-transformers' windows and vectors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from vscli.embedding import bundled_model_path, load_embedder, load_model
from vscli.embedding.onnx_documents import OnnxDocumentEmbedder, pack
from vscli.embedding.windows import split_windows

MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FILLER = ("The committee reviewed the quarterly maintenance schedule for the municipal water "
          "treatment facility, including pump inspections and valve replacements. ")
SECRET = "The lighthouse keeper hid the spare key to the lantern room inside a tin of peppermint tea."


@pytest.fixture(scope="module")
def embedder():
    return load_model("all-MiniLM-L6-v2")


def test_default_model_is_the_bundled_genuine_weights() -> None:
    digest = hashlib.sha256((bundled_model_path() / "model.safetensors").read_bytes()).hexdigest()
    assert digest == MODEL_SHA256


def test_model_reads_256_pieces(embedder) -> None:
    assert embedder.model.max_seq_length == 256
    assert embedder.dimension == 384


def test_long_text_is_split_into_windows_that_fit(embedder) -> None:
    text = FILLER * 30 + SECRET  # about 700 word pieces
    tok = embedder.model.tokenizer
    windows, owners = split_windows([text, "short text"], embedder.piece_offsets, embedder.max_pieces)
    assert owners.count(0) >= 3 and owners.count(1) == 1
    for w in windows:
        assert len(tok(w, add_special_tokens=False)["input_ids"]) <= embedder.max_pieces
    assert windows[owners.index(0)].startswith("The committee")
    assert SECRET in windows[len(windows) - 2]  # the last window of text 0 holds its end
    assert sum(1 for o in owners if o == 0) * embedder.max_pieces >= len(tok(text)["input_ids"])


def test_words_are_not_cut_at_window_edges(embedder) -> None:
    text = " ".join(["incomprehensibilities"] * 400)
    windows, _ = split_windows([text], embedder.piece_offsets, embedder.max_pieces)
    for w in windows:
        assert set(w.split()) == {"incomprehensibilities"}


def test_text_past_the_model_window_is_embedded(embedder) -> None:
    """A sentence past the first 256 word pieces must reach the index. sentence-transformers alone
    truncates: both texts below would then get the same vector and the same score."""
    with_secret = FILLER * 13 + SECRET  # the secret starts after ~275 word pieces
    without = FILLER * 13 + FILLER
    assert len(embedder.model.tokenizer(FILLER * 13)["input_ids"]) > 256
    q = embedder.embed_query("where is the spare key to the lantern room hidden?")
    truncated = embedder._encode([with_secret, without]) @ q
    assert abs(float(truncated[0] - truncated[1])) < 0.01  # the trap: truncation loses the secret
    vectors, owners = embedder.embed_documents([with_secret, without])
    best = [max(float(vectors[i] @ q) for i in np.flatnonzero(owners == t)) for t in (0, 1)]
    assert best[0] > best[1] + 0.15, best


def test_vectors_are_normalized_and_batched_like_single_calls(embedder) -> None:
    texts = ["data mining finds patterns", "sourdough needs a starter", "vector search with FAISS"]
    batch, owners = embedder.embed_documents(texts)
    assert owners.tolist() == [0, 1, 2]
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for i, t in enumerate(texts):
        assert float(batch[i] @ embedder.embed_query(t)) > 0.9999


def test_ingest_runs_on_the_onnx_export_with_the_same_windows_and_vectors(embedder) -> None:
    """Ingest used to run the model through torch; it now runs the verified export, which must cut the
    same windows and give the same vectors, padded batches of mixed lengths included."""
    fast = load_embedder("all-MiniLM-L6-v2")
    assert isinstance(fast, OnnxDocumentEmbedder)
    texts = [FILLER * 13 + SECRET, FILLER * 14, "short text", "Quokka 🐾 on Rottnest Island; café crème at 07:30.",
             FILLER * 30 + SECRET, " ".join(["incomprehensibilities"] * 400), "a", "UPPER CASE AND\ttabs\n\nlines",
             *(FILLER[: 20 + 9 * i] for i in range(20))]
    assert split_windows(texts, fast.piece_offsets, fast.max_pieces) == split_windows(
        texts, embedder.piece_offsets, embedder.max_pieces)
    reported: list[int] = []
    vectors, owners = fast.embed_documents(texts, progress=reported.append)
    reference, reference_owners = embedder.embed_documents(texts)
    assert owners.tolist() == reference_owners.tolist() and sum(reported) == len(owners)
    cosines = (vectors * reference).sum(axis=1)
    assert float(cosines.min()) >= 0.9999, cosines
    q = fast.embed_query("where is the spare key to the lantern room hidden?")
    best = [max(float(vectors[i] @ q) for i in np.flatnonzero(owners == t)) for t in (0, 1)]
    assert best[0] > best[1] + 0.15, best  # the secret, past 256 pieces, reached a vector


def test_ingest_sessions_side_by_side_give_the_vectors_of_one(embedder) -> None:
    """Ingest runs one single-threaded session per core, each batch on whichever is free: the vectors
    must be those of one session, each in its window's place, with every window reported once."""
    from vscli.embedding import resolve_model
    from vscli.embedding.onnx_query import cache_dir, read_meta

    resolved = resolve_model("all-MiniLM-L6-v2")
    load_embedder("all-MiniLM-L6-v2")  # makes the export if this run has not yet
    meta = read_meta(resolved)
    assert meta is not None
    texts = [FILLER * (i % 7 + 1) + f" item {i}" for i in range(45)] + [FILLER * 30 + SECRET]
    one = OnnxDocumentEmbedder("all-MiniLM-L6-v2", cache_dir(resolved), meta, threads=1)
    several = OnnxDocumentEmbedder("all-MiniLM-L6-v2", cache_dir(resolved), meta, threads=3)
    assert len(one.encoders) == 1 and len(several.encoders) == 3
    reported: list[int] = []
    vectors, owners = several.embed_documents(texts, progress=reported.append)
    reported_one: list[int] = []
    expected, expected_owners = one.embed_documents(texts, progress=reported_one.append)  # no thread pool
    assert owners.tolist() == expected_owners.tolist() and sum(reported) == len(owners) > len(texts)
    assert sum(reported_one) == len(owners)
    assert float(np.abs(vectors - expected).max()) < 1e-5


def test_windows_are_batched_longest_first_within_a_budget_of_pieces() -> None:
    """A long window goes alone (a small batch stays in the core's cache); short ones share a batch, as
    many as fit in the budget with padding to the batch's longest counted."""
    lengths = [30, 250, 60, 120, 200, 60, 30, 60, 130, 30, 60, 30]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches = pack(order, lengths, budget=256)
    assert [[lengths[i] for i in batch] for batch in batches] == [
        [250], [200], [130], [120, 60], [60, 60, 60, 30], [30, 30, 30]]
    assert [i for batch in batches for i in batch] == order
    assert pack([0, 1], [300, 10], budget=256) == [[0], [1]]  # longer than the budget: alone
    assert pack([], [], budget=256) == []
