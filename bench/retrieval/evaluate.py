"""Retrieval quality of a Keyward knowledge base on the fixture corpus (fixtures/retrieval).

Creates a tenant whose openai-compatible credential points at the offline embedding server,
a knowledge base on it, ingests every document through `POST /v1/knowledge-bases/{kb}/documents`
and asks every question through `POST /v1/knowledge-bases/{kb}/search`. Reports recall@5 (the
answer document among the first five chunks' documents) and MRR@10, as JSON on stdout.

Also reports what a hybrid ranking would give — Keyward's vector ranking fused by reciprocal
rank (k = 60) with a BM25 ranking over the same chunks, computed here — so the decision to
build hybrid retrieval into Keyward rests on a measurement.

    python3 bench/retrieval/evaluate.py --keyward URL --token ADMIN_TOKEN --embeddings URL
"""

import argparse
import collections
import json
import math
import pathlib
import re
import urllib.request


def call(url, token, method="GET", body=None):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read() or b"null")


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


class Bm25:
    def __init__(self, chunks, k1=1.2, b=0.75):
        self.chunks = chunks
        self.terms = [collections.Counter(words(text)) for _, text in chunks]
        self.lengths = [sum(counts.values()) for counts in self.terms]
        self.average = sum(self.lengths) / len(self.lengths)
        frequency = collections.Counter(term for counts in self.terms for term in counts)
        self.idf = {term: math.log(1 + (len(chunks) - n + 0.5) / (n + 0.5)) for term, n in frequency.items()}
        self.k1, self.b = k1, b

    def rank(self, query, limit):
        scores = []
        query_terms = set(words(query))
        for index, counts in enumerate(self.terms):
            score = 0.0
            for term in query_terms & counts.keys():
                tf = counts[term]
                score += self.idf[term] * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * self.lengths[index] / self.average))
            if score > 0:
                scores.append((score, index))
        scores.sort(reverse=True)
        return [self.chunks[index][0] for _, index in scores[:limit]]


def metrics(rankings, answers):
    """recall@5 and MRR@10 over document rankings."""
    recall, reciprocal = 0, 0.0
    for ranking, answer in zip(rankings, answers):
        documents = list(dict.fromkeys(ranking))
        if answer in documents[:5]:
            recall += 1
        if answer in documents[:10]:
            reciprocal += 1 / (documents.index(answer) + 1)
    return {"recall_at_5": recall / len(answers), "mrr_at_10": reciprocal / len(answers)}


def fuse(first, second, k=60):
    scores = collections.defaultdict(float)
    for ranking in (first, second):
        for rank, item in enumerate(ranking):
            scores[item] += 1 / (k + rank + 1)
    return [item for item, _ in sorted(scores.items(), key=lambda pair: -pair[1])]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keyward", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--embeddings", required=True)
    parser.add_argument("--fixture", default="fixtures/retrieval")
    parser.add_argument("--chunk-tokens", type=int, default=200)
    args = parser.parse_args()
    fixture = pathlib.Path(args.fixture)
    corpus = [json.loads(line) for line in open(fixture / "corpus.jsonl")]
    questions = [json.loads(line) for line in open(fixture / "questions.jsonl")]
    admin = lambda method, path, body=None: call(args.keyward + path, args.token, method, body)
    tenant = admin("POST", "/admin/v1/tenants", {"name": "retrieval-bench"})["id"]
    admin("POST", f"/admin/v1/tenants/{tenant}/credentials", {
        "provider": "openai-compatible", "label": "local", "base_url": args.embeddings + "/v1"})
    admin("POST", f"/admin/v1/tenants/{tenant}/departments", {"name": "everyone"})
    admin("POST", f"/admin/v1/tenants/{tenant}/knowledge-bases", {
        "name": "handbook", "department": "everyone", "chunk_tokens": args.chunk_tokens, "chunk_overlap": 20,
        "embedding": {"credential": "local", "model": "all-MiniLM-L6-v2"}})
    key = admin("POST", f"/admin/v1/tenants/{tenant}/keys", {"role": "member", "department": "everyone"})["key"]
    by_keyward_id = {}
    for document in corpus:
        added = call(f"{args.keyward}/v1/knowledge-bases/handbook/documents", key, "POST",
                     {"name": document["name"], "text": document["text"], "content_type": "text/markdown"})
        by_keyward_id[added["id"]] = document["id"]
    vector, chunk_texts = [], {}
    for question in questions:
        hits = call(f"{args.keyward}/v1/knowledge-bases/handbook/search", key, "POST",
                    {"query": question["question"], "top_k": 50})["data"]
        vector.append([by_keyward_id[hit["document_id"]] for hit in hits])
    # BM25 over the corpus's documents (one chunk each at this size), fused with the vector ranking.
    bm25 = Bm25([(document["id"], document["text"]) for document in corpus])
    keyword = [bm25.rank(question["question"], 50) for question in questions]
    answers = [question["document"] for question in questions]
    print(json.dumps({
        "documents": len(corpus), "questions": len(questions), "model": "all-MiniLM-L6-v2",
        "vector": metrics(vector, answers),
        "keyword_bm25": metrics(keyword, answers),
        "hybrid_rrf": metrics([fuse(v, k) for v, k in zip(vector, keyword)], answers),
    }))


if __name__ == "__main__":
    main()
