"""Store sentence-transformers' vectors for the verification texts of a model, so that an install
without torch can verify the ONNX graph it builds for that model (vscli/embedding/reference.py).

    python scripts/make_reference_vectors.py [MODEL]   # default: the bundled all-MiniLM-L6-v2

Needs torch and sentence-transformers (`pip install -e ".[torch]"`). The file is named by the SHA-256 of
the model's model.safetensors; tests/test_query_encoder.py checks that the stored vectors are still
what sentence-transformers computes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vscli.embedding import DEFAULT_MODEL, load_model, resolve_model  # noqa: E402
from vscli.embedding.onnx_export import DOCUMENT_TEXTS, VERIFY_TEXTS  # noqa: E402
from vscli.embedding.reference import reference_path, save_reference, weights_digest  # noqa: E402


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL
    digest = weights_digest(Path(resolve_model(name)))
    if digest is None:
        raise SystemExit(f"{name}: no model.safetensors in {resolve_model(name)}")
    path = reference_path(digest)
    save_reference(path, load_model(name), VERIFY_TEXTS, DOCUMENT_TEXTS)
    print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
