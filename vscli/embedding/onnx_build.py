"""Build a BERT model's ONNX graph straight from its weights, without torch.

A sentence-transformers model made of a BERT encoder (``config.json`` with ``model_type`` "bert",
weights in ``model.safetensors``), mean or CLS pooling and optional normalization is a fixed sequence of
matrix products, layer norms, softmax and GELU. Writing that graph with `onnx.helper` gives the same
``last_hidden_state`` as torch's trace, so a plain install needs neither torch nor sentence-transformers
(several GB) to embed with the default model. Each layer's self-attention is one onnxruntime
`com.microsoft.Attention` node (the query, key and value projections in one matrix product, then the
heads), which onnxruntime does not fuse from the traced graph's nodes: with it a session opens in 12 ms
instead of 19 and an ingest encodes 1-4% faster here (BENCHMARKS.md). The rest is plain opset 17 (exact
erf GELU, which onnxruntime fuses with its bias), and the weights go to external data (memory-mapped at
load). Whether the result is right is not assumed: `onnx_export` verifies every export against
sentence-transformers' vectors (stored ones, for the bundled model).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from vscli.embedding.onnx_query import FORMAT_VERSION

OPSET = 17
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def pooling_mode(config: dict[str, Any]) -> str | None:
    """"mean" or "cls" from a sentence-transformers Pooling config, else None (a pooling not exported)."""
    for mode in ("mean", "cls"):
        if config.get(f"pooling_mode_{mode}_tokens"):
            return mode
    return None


def exportable(modules: list[str], mode: str | None) -> bool:
    """Whether a model of these sentence-transformers modules and pooling has an export vscli can make:
    Transformer + mean/CLS Pooling (+ Normalize)."""
    return modules[:2] == ["Transformer", "Pooling"] and all(m == "Normalize" for m in modules[2:]) and mode in (
        "mean", "cls")


def describe_model(model_dir: Path) -> dict[str, Any] | None:
    """The facts the graph needs, or None when the model is not a BERT sentence encoder this builds."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model_dir / "modules.json").read_text())]
        mode = pooling_mode(json.loads((model_dir / "1_Pooling" / "config.json").read_text()))
        settings = json.loads((model_dir / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if (config.get("model_type") != "bert" or config.get("hidden_act") != "gelu" or not exportable(modules, mode)
            or config.get("position_embedding_type", "absolute") != "absolute"
            or not (model_dir / "model.safetensors").is_file() or not (model_dir / "tokenizer.json").is_file()):
        return None
    return {"config": config, "pooling": mode,
            "max_seq_length": int(settings.get("max_seq_length") or config["max_position_embeddings"])}


def read_safetensors(path: Path) -> dict[str, Any]:
    """Every tensor of a safetensors file as a numpy array; half precision is widened to float32 (the
    graph computes in float32). bfloat16, which numpy has no type for, is refused by the reader."""
    import numpy as np
    from safetensors.numpy import load_file

    return {name: array.astype(np.float32) if array.dtype == np.float16 else array
            for name, array in load_file(path).items()}


def build(model_dir: Path, staging: Path, name: str) -> dict[str, Any]:
    """Write model.onnx, model.onnx.data and the tokenizer files into ``staging``; returns the export's
    record (not yet verified)."""
    facts = describe_model(model_dir)
    if facts is None:
        return {"verified": False, "reason": "not a BERT sentence encoder the builder knows"}
    import onnx

    weights = read_safetensors(model_dir / "model.safetensors")
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
    model = _graph(facts["config"], {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
    onnx.save_model(model, str(staging / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=1024)
    for file in TOKENIZER_FILES:
        if (model_dir / file).is_file():
            shutil.copyfile(model_dir / file, staging / file)
    return {"verified": True, "format": FORMAT_VERSION, "pooling": facts["pooling"],
            "dimension": int(facts["config"]["hidden_size"]), "max_seq_length": facts["max_seq_length"],
            "model": name, "built": "onnx.helper from model.safetensors"}


class _Graph:
    """Nodes and initializers, with generated names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def const(self, name: str, array: Any) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, domain: str = "", **attributes: Any) -> str:
        from onnx import helper

        self.count += 1
        output = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=f"{op_type}_{self.count}",
                                           domain=domain, **attributes))
        return output

    def linear(self, x: str, weights: dict[str, Any], name: str) -> str:
        """x @ W^T + b, as torch's Linear (its weight is [out, in])."""
        import numpy as np

        kernel = self.const(f"{name}.weight_t", np.ascontiguousarray(weights[f"{name}.weight"].T))
        return self.op("Add", self.op("MatMul", x, kernel), self.const(f"{name}.bias", weights[f"{name}.bias"]))

    def layer_norm(self, x: str, weights: dict[str, Any], name: str, epsilon: float) -> str:
        return self.op("LayerNormalization", x, self.const(f"{name}.weight", weights[f"{name}.weight"]),
                       self.const(f"{name}.bias", weights[f"{name}.bias"]), axis=-1, epsilon=epsilon)


def _graph(config: dict[str, Any], weights: dict[str, Any]) -> Any:
    import numpy as np
    from onnx import TensorProto, helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    epsilon = float(config.get("layer_norm_eps", 1e-12))
    g = _Graph()
    i64 = lambda name, values: g.const(name, np.asarray(values, dtype=np.int64))  # noqa: E731
    f32 = lambda name, value: g.const(name, np.asarray(value, dtype=np.float32))  # noqa: E731

    # Embeddings: words + token types + positions 0..S-1, then a layer norm.
    length = g.op("Gather", g.op("Shape", "input_ids"), i64("one", 1), axis=0)
    positions = g.op("Range", i64("zero", 0), length, "one")
    x = g.op("Add", g.op("Add", g.op("Gather", g.const("word_embeddings", weights["embeddings.word_embeddings.weight"]),
                                     "input_ids", axis=0),
                         g.op("Gather", g.const("token_type_embeddings",
                                                weights["embeddings.token_type_embeddings.weight"]),
                              "token_type_ids", axis=0)),
             g.op("Gather", g.const("position_embeddings", weights["embeddings.position_embeddings.weight"]),
                  positions, axis=0))
    x = g.layer_norm(x, weights, "embeddings.LayerNorm", epsilon)

    # The raw 0/1 mask: the Attention node adds -10000 to the scores of padding (exp() of it is 0 in
    # float32, as for transformers' float32 min).
    mask = g.op("Cast", "attention_mask", to=TensorProto.INT32)

    for layer in range(int(config["num_hidden_layers"])):
        name = f"encoder.layer.{layer}"
        parts = [f"{name}.attention.self.{part}" for part in ("query", "key", "value")]
        qkv = g.const(f"{name}.attention.qkv.weight_t",
                      np.ascontiguousarray(np.concatenate([weights[f"{p}.weight"].T for p in parts], axis=1)))
        qkv_bias = g.const(f"{name}.attention.qkv.bias", np.concatenate([weights[f"{p}.bias"] for p in parts]))
        context = g.op("Attention", x, qkv, qkv_bias, mask, domain="com.microsoft", num_heads=heads)
        attended = g.op("Add", g.linear(context, weights, f"{name}.attention.output.dense"), x)
        x = g.layer_norm(attended, weights, f"{name}.attention.output.LayerNorm", epsilon)
        inner = g.linear(x, weights, f"{name}.intermediate.dense")
        gelu = g.op("Mul", g.op("Mul", inner, g.op("Add", g.op("Erf", g.op("Div", inner, f32(f"sqrt2_{layer}",
                                                                                          math.sqrt(2.0)))),
                                                   f32(f"one_{layer}", 1.0))), f32(f"half_{layer}", 0.5))
        x = g.layer_norm(g.op("Add", g.linear(gelu, weights, f"{name}.output.dense"), x), weights,
                         f"{name}.output.LayerNorm", epsilon)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    axes = ["batch", "sequence"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, axes)
              for n in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*axes, hidden])
    graph = helper.make_graph(g.nodes, "sentence_encoder", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("com.microsoft", 1)], producer_name="vscli")
    model.ir_version = 8  # the IR of opset 17: onnxruntime releases of the last years all read it
    return model
