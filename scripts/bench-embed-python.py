#!/usr/bin/env python3
"""Python comparators for the embedding benchmark: all-MiniLM-L6-v2 encoded on CPU by
  - sentence_transformers: SentenceTransformer on PyTorch, torch.set_num_threads(N);
  - onnxruntime: the same model exported to ONNX (sentence-transformers' backend="onnx" export, via
    optimum), run by a plain onnxruntime InferenceSession (intra-op threads N) fed by the model's
    tokenizer.json through the `tokenizers` library, then mean pooling and L2 normalisation in numpy.

Both build the model as sentence-transformers packages it: Transformer (max_seq_length from
sentence_bert_config.json) + mean Pooling + Normalize, whether or not the model directory has
modules.json. Like SentenceTransformer.encode, the onnxruntime path sorts the sentences by length
(longest first) before batching, so both pad the same way.

For each batch size: one warm-up pass over the first batch, then the whole sentence list is encoded
--repeats times; the figure is sentences per second of the median pass (the best pass is reported
too). The Rust side times Cairn the same way, with the same --repeats.

Both engines' vectors for every sentence (batches of --compare-batch) are compared with each other
("min_cosine") and, with --vectors-out, written to a JSON file ({"sentence_transformers": [[...]],
"onnxruntime": [[...]]}, in the sentences' order) so that the caller compares its own with them. The exported ONNX model is cached under ~/.cache/cairn/bench-onnx/ (keyed by the model's
files), so later runs skip the export.

usage: python bench-embed-python.py --model DIR --sentences FILE.json --batch-sizes 1,8,32,64
                                    [--threads N] [--repeats R] [--onnx-cache DIR]
                                    [--compare-batch B] [--vectors-out FILE.json]
needs: the environment scripts/bench-python-env.sh makes
output: one JSON object on the last stdout line (exit 0 also when "agree" is false; check it);
        progress goes to stderr. Exit 2 on bad arguments or an incomplete model directory.
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REQUIRED_FILES = ["config.json", "tokenizer.json", "model.safetensors", "sentence_bert_config.json"]


def log(*a):
    print("bench-embed-python:", *a, file=sys.stderr, flush=True)


def die(msg, code=2):
    log("error:", msg)
    sys.exit(code)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model directory (config.json, tokenizer.json, model.safetensors, sentence_bert_config.json)")
    p.add_argument("--sentences", required=True, help="JSON file holding a list of strings")
    p.add_argument("--batch-sizes", default="1,8,32,64", help="comma-separated batch sizes")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="compute threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per batch size (default 3)")
    p.add_argument("--compare-batch", type=int, default=32, help="batch size of the vectors compared (default 32)")
    p.add_argument("--vectors-out", help="write both engines' vectors for every sentence to this JSON file")
    p.add_argument("--onnx-cache", default=os.path.expanduser("~/.cache/cairn/bench-onnx"), help="where the exported ONNX model is kept")
    a = p.parse_args()
    try:
        a.batch_sizes = [int(b) for b in a.batch_sizes.split(",") if b.strip()]
    except ValueError:
        die(f"--batch-sizes must be comma-separated integers, got {a.batch_sizes!r}")
    if not a.batch_sizes or min(a.batch_sizes) < 1:
        die("--batch-sizes must list positive integers")
    if a.threads < 1 or a.repeats < 1 or a.compare_batch < 1:
        die("--threads, --repeats and --compare-batch must be >= 1")
    return a


def check_inputs(a):
    model = Path(a.model)
    if not model.is_dir():
        die(f"model directory {model} does not exist (scripts/fetch-models.sh fetches it)")
    missing = [f for f in REQUIRED_FILES if not (model / f).is_file() or (model / f).stat().st_size == 0]
    if missing:
        die(f"model directory {model} is incomplete: missing {', '.join(missing)} (needs {', '.join(REQUIRED_FILES)})")
    try:
        sentences = json.loads(Path(a.sentences).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        die(f"cannot read the sentences file {a.sentences}: {e}")
    if not isinstance(sentences, list) or not sentences or not all(isinstance(s, str) for s in sentences):
        die(f"{a.sentences} must hold a non-empty JSON list of strings")
    try:
        st_config = json.loads((model / "sentence_bert_config.json").read_text())
        max_seq_length = int(st_config.get("max_seq_length", 256))
        do_lower_case = bool(st_config.get("do_lower_case", False))
    except (OSError, ValueError) as e:
        die(f"cannot read {model / 'sentence_bert_config.json'}: {e}")
    return model.resolve(), sentences, max_seq_length, do_lower_case


def model_key(model):
    h = hashlib.sha256()
    for f in REQUIRED_FILES:
        h.update(f.encode())
        with open(model / f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def build_st(model, max_seq_length, do_lower_case, backend, model_args=None):
    """Transformer + mean Pooling + Normalize, as all-MiniLM-L6-v2 is packaged, without relying on
    modules.json being present."""
    from sentence_transformers import SentenceTransformer, models

    transformer = models.Transformer(
        str(model),
        max_seq_length=max_seq_length,
        do_lower_case=do_lower_case,
        backend=backend,
        model_args=model_args or {},
    )
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")


def onnx_model_path(model, max_seq_length, do_lower_case, cache_root):
    """The exported model.onnx for this model directory, exporting it (once) if it is not cached."""
    import optimum.version

    key = f"{model_key(model)}-optimum{optimum.version.__version__}"
    target = Path(cache_root) / key
    onnx_file = target / "onnx" / "model.onnx"
    if onnx_file.is_file():
        log(f"using the cached ONNX export {onnx_file}")
        return onnx_file
    log(f"exporting {model} to ONNX (once; cached at {target})")
    t0 = time.perf_counter()
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_root))
    try:
        st = build_st(model, max_seq_length, do_lower_case, "onnx", {"provider": "CPUExecutionProvider"})
        st.save(str(tmp))
        if not (tmp / "onnx" / "model.onnx").is_file():
            die(f"the ONNX export wrote no onnx/model.onnx under {tmp}", 1)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"exported in {time.perf_counter() - t0:.1f}s")
    return onnx_file


class OrtEncoder:
    def __init__(self, onnx_file, tokenizer_json, max_seq_length, threads):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_file), sess_options=so, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")

    def _batch(self, texts):
        import numpy as np

        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
        hidden = self.session.run(None, feed)[0]  # last_hidden_state [batch, seq, dim]
        m = mask[:, :, None].astype(hidden.dtype)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def encode(self, sentences, batch_size):
        import numpy as np

        order = np.argsort([-len(s) for s in sentences], kind="stable")
        out = [None] * len(sentences)
        for start in range(0, len(sentences), batch_size):
            idx = order[start : start + batch_size]
            vecs = self._batch([sentences[i] for i in idx])
            for i, v in zip(idx, vecs):
                out[i] = v
        return np.stack(out)


def time_encoder(name, encode, sentences, batch_sizes, repeats):
    median, best = {}, {}
    for bs in batch_sizes:
        encode(sentences[:bs], bs)  # warm-up over the first batch
        passes = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            encode(sentences, bs)
            passes.append(time.perf_counter() - t0)
        median[str(bs)] = round(len(sentences) / statistics.median(passes), 2)
        best[str(bs)] = round(len(sentences) / min(passes), 2)
        log(f"{name} batch {bs}: {median[str(bs)]} sentences/s (median of {repeats}; best {best[str(bs)]})")
    return median, best


def main():
    a = parse_args()
    model, sentences, max_seq_length, do_lower_case = check_inputs(a)
    threads = a.threads
    # Thread counts for the libraries that read them at import time (the tokenizers' rayon pool too).
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_RS_NUM_CPUS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

    # Anything a library writes to stdout (Python or native) goes to stderr, so that the JSON object
    # is the only thing on stdout.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        import numpy as np
        import onnxruntime
        import sentence_transformers
        import torch

        torch.set_num_threads(threads)
        log(f"{len(sentences)} sentences, batch sizes {a.batch_sizes}, {threads} threads, {a.repeats} repeats, max_seq_length {max_seq_length}")

        st = build_st(model, max_seq_length, do_lower_case, "torch")
        st.eval()

        def st_encode(texts, bs):
            with torch.inference_mode():
                return st.encode(texts, batch_size=bs, convert_to_numpy=True, show_progress_bar=False)

        onnx_file = onnx_model_path(model, max_seq_length, do_lower_case, a.onnx_cache)
        ort_enc = OrtEncoder(onnx_file, model / "tokenizer.json", max_seq_length, threads)

        v_st = st_encode(sentences, a.compare_batch)
        v_ort = ort_enc.encode(sentences, a.compare_batch)
        cos = (v_st * v_ort).sum(axis=1) / (np.linalg.norm(v_st, axis=1) * np.linalg.norm(v_ort, axis=1))
        min_cos = float(cos.min())
        agree = bool(v_st.shape == v_ort.shape and min_cos >= 0.999)
        log(f"agreement over all {len(sentences)} sentences: min cosine {min_cos:.6f} -> {'ok' if agree else 'MISMATCH'}")
        if a.vectors_out:
            with open(a.vectors_out, "w", encoding="utf-8") as out:
                json.dump({"sentence_transformers": v_st.tolist(), "onnxruntime": v_ort.tolist()}, out)

        st_median, st_best = time_encoder("sentence_transformers", st_encode, sentences, a.batch_sizes, a.repeats)
        ort_median, ort_best = time_encoder("onnxruntime", ort_enc.encode, sentences, a.batch_sizes, a.repeats)

        result = {
            "sentence_transformers": st_median,
            "onnxruntime": ort_median,
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "sentence_transformers": sentence_transformers.__version__,
                "onnxruntime": onnxruntime.__version__,
            },
            "threads": threads,
            "agree": agree,
            "min_cosine": round(min_cos, 6),
            "best": {"sentence_transformers": st_best, "onnxruntime": ort_best},
            "sentences": len(sentences),
            "repeats": a.repeats,
            "stat": "median",
        }
    finally:
        sys.stdout.flush()
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
    print(json.dumps(result), flush=True)
    if not agree:
        log("warning: the two comparators do not produce the same vectors (see \"agree\" / \"min_cosine\")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
