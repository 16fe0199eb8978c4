#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, computed by an independent implementation.

A plain numpy forward pass of BERT over the same safetensors weights and tokenizer.json (one sentence
at a time, so no padding is involved), then mean pooling and L2 normalisation, as sentence-transformers
does. The output is the fixture crates/cairn-candle/tests/fixtures/minilm-reference.json, which the
Rust embedding test compares against (cosine >= 0.999).

usage: python3 scripts/reference-embeddings.py MODEL_DIR > crates/cairn-candle/tests/fixtures/minilm-reference.json
needs: pip install numpy safetensors tokenizers
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "How do I configure connection pooling in PostgreSQL?",
    "Rust's borrow checker prevents data races at compile time.",
    "Le chat dort sur le canapé.",
    "",
    "Cairn routes each model call to a local model or to Azure OpenAI, with fallback and retries. " * 12,
]


def layer_norm(x, w, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def forward(w, config, ids, type_ids):
    n_heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    head = hidden // n_heads
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: len(ids)]
        + w["embeddings.token_type_embeddings.weight"][type_ids]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def dense(name, v):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q = dense("attention.self.query", x).reshape(-1, n_heads, head).transpose(1, 0, 2)
        k = dense("attention.self.key", x).reshape(-1, n_heads, head).transpose(1, 0, 2)
        v = dense("attention.self.value", x).reshape(-1, n_heads, head).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(-1, hidden)
        x = layer_norm(
            dense("attention.output.dense", context) + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        inner = gelu(dense("intermediate.dense", x))
        x = layer_norm(
            dense("output.dense", inner) + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    pooled = x.mean(0)
    return pooled / max(np.linalg.norm(pooled), 1e-12)


def main():
    model_dir = sys.argv[1]
    config = json.load(open(f"{model_dir}/config.json"))
    max_len = json.load(open(f"{model_dir}/sentence_bert_config.json"))["max_seq_length"]
    weights = {k: v.astype(np.float64) for k, v in load_file(f"{model_dir}/model.safetensors").items()}
    tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_len)
    out = []
    for sentence in SENTENCES:
        enc = tokenizer.encode(sentence)
        vector = forward(weights, config, np.array(enc.ids), np.array(enc.type_ids))
        out.append({"text": sentence, "tokens": len(enc.ids), "vector": [round(float(v), 6) for v in vector]})
    json.dump({"model": "all-MiniLM-L6-v2", "method": "numpy float64 forward pass", "sentences": out}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
