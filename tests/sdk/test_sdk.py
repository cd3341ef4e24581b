"""Keyward driven by the official OpenAI and Anthropic Python SDKs, changing nothing but
`base_url` and `api_key`."""

import concurrent.futures
import json
import urllib.request
import uuid

import anthropic
import openai

try:  # the SDKs moved from httpx to its successor httpx2
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs
    import httpx
import pytest

REPLY = "Mockly answers with quokka words."
PROMPT = "Hello there, mock!"  # 18 bytes: the mock counts 5 input tokens
MESSAGES = [{"role": "user", "content": PROMPT}]


def openai_client(gateway, key, **kwargs):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, **kwargs)


def anthropic_client(gateway, key, **kwargs):
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, **kwargs)


def test_openai_chat_completion(gateway, tenant):
    client = openai_client(gateway, tenant["key"])
    raw = client.chat.completions.with_raw_response.create(model="team-openai/gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == REPLY
    assert completion.usage.prompt_tokens == 5
    row = gateway.ledger(raw.headers["x-keyward-request-id"])
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 5, 6)


def test_openai_stream_without_usage_hides_the_usage_chunk(gateway, tenant):
    client = openai_client(gateway, tenant["key"])
    raw = client.chat.completions.with_raw_response.create(model="team-openai/gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = list(raw.parse())
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == REPLY
    assert all(chunk.choices for chunk in chunks), "the usage chunk Keyward asked for is hidden"
    row = gateway.ledger(raw.headers["x-keyward-request-id"])
    assert (row["status"], row["stream"], row["input_tokens"], row["output_tokens"]) == ("ok", 1, 5, 6)


def test_openai_stream_with_include_usage(gateway, tenant):
    client = openai_client(gateway, tenant["key"])
    stream = client.chat.completions.create(
        model="team-openai/gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 5
    assert chunks[-1].usage.completion_tokens == 6


def test_a_bad_platform_key_is_a_401_the_sdk_does_not_retry(gateway, tenant):
    sent = []
    http_client = httpx.Client(event_hooks={"request": [sent.append]})
    client = openai_client(gateway, "kw_" + "x" * 55, http_client=http_client)
    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model="team-openai/gpt-4o-mini", messages=MESSAGES)
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_platform_key"
    assert len(sent) == 1, "a 401 must not be retried"


def test_a_stream_with_a_bad_key_fails_at_create(gateway, tenant):
    client = openai_client(gateway, "kw_" + "y" * 55)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="team-openai/gpt-4o-mini", messages=MESSAGES, stream=True)


def test_an_abandoned_stream_is_recorded_as_client_cancelled(gateway, tenant):
    client = openai_client(gateway, tenant["key"])
    raw = client.chat.completions.with_raw_response.create(model="team-openai/mock-slow-stream", messages=MESSAGES, stream=True)
    stream = raw.parse()
    next(iter(stream))
    stream.close()
    row = gateway.ledger(raw.headers["x-keyward-request-id"])
    assert row["status"] == "client_cancelled"


def test_concurrent_calls_each_leave_one_ledger_row(gateway, tenant):
    client = openai_client(gateway, tenant["key"])
    before = gateway.mock_calls()["by_key"].get(tenant["secrets"]["openai"], 0)

    def call(index):
        raw = client.chat.completions.with_raw_response.create(
            model="team-openai/gpt-4o-mini", messages=MESSAGES, stream=index % 2 == 0)
        result = raw.parse()
        if index % 2 == 0:
            list(result)
        return raw.headers["x-keyward-request-id"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        request_ids = list(pool.map(call, range(40)))
    assert len(set(request_ids)) == 40
    statuses = [gateway.ledger(request_id)["status"] for request_id in request_ids]
    assert statuses == ["ok"] * 40
    after = gateway.mock_calls()["by_key"][tenant["secrets"]["openai"]]
    assert after - before == 40, "one upstream call per request, on the tenant's key"


def test_anthropic_messages_and_stream(gateway, tenant):
    client = anthropic_client(gateway, tenant["key"])
    message = client.messages.create(model="claude/claude-sonnet-4-5", max_tokens=100, messages=MESSAGES)
    assert message.content[0].text == REPLY
    assert message.usage.input_tokens == 5
    with client.messages.stream(model="claude/claude-sonnet-4-5", max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLY
    assert final.usage.output_tokens == 6


def test_anthropic_errors_use_anthropics_shape(gateway, tenant):
    client = anthropic_client(gateway, "kw_" + "z" * 55, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as raised:
        client.messages.create(model="claude/claude-sonnet-4-5", max_tokens=10, messages=MESSAGES)
    assert raised.value.body["error"]["code"] == "invalid_platform_key"


def test_openai_embeddings_with_the_sdk_default_encoding(gateway, tenant):
    client = openai_client(gateway, tenant["key"])
    raw = client.embeddings.with_raw_response.create(model="team-openai/text-embedding-3-small", input="hello embeddings")
    result = raw.parse()
    assert len(result.data[0].embedding) == 8  # the SDK decoded Keyward's base64 pass-through
    assert all(isinstance(value, float) for value in result.data[0].embedding)
    row = gateway.ledger(raw.headers["x-keyward-request-id"])
    assert (row["status"], row["endpoint"], row["input_tokens"]) == ("ok", "/v1/embeddings", 4)


def test_the_openai_sdk_can_call_an_anthropic_credential(gateway, tenant):
    client = openai_client(gateway, tenant["key"])
    completion = client.chat.completions.create(model="claude/claude-sonnet-4-5", messages=MESSAGES)
    assert completion.choices[0].message.content == REPLY
    assert completion.usage.prompt_tokens == 5
    stream = client.chat.completions.create(
        model="claude/claude-sonnet-4-5", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == REPLY
    assert chunks[-1].usage.completion_tokens == 6


def test_openai_responses_api(gateway, tenant):
    client = openai_client(gateway, tenant["key"])
    raw = client.responses.with_raw_response.create(model="team-openai/gpt-4o-mini", input=PROMPT)
    response = raw.parse()
    assert response.output_text == REPLY
    assert response.usage.input_tokens == 5
    row = gateway.ledger(raw.headers["x-keyward-request-id"])
    assert (row["status"], row["endpoint"], row["output_tokens"]) == ("ok", "/v1/responses", 6)
    stream = client.responses.create(model="team-openai/gpt-4o-mini", input=PROMPT, stream=True)
    deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
    assert "".join(deltas) == REPLY


def test_the_anthropic_sdk_can_call_an_openai_credential(gateway, tenant):
    client = anthropic_client(gateway, tenant["key"])
    message = client.messages.create(model="team-openai/gpt-4o-mini", max_tokens=100, messages=MESSAGES)
    assert message.content[0].text == REPLY
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 6)
    with client.messages.stream(model="team-openai/gpt-4o-mini", max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLY
    assert final.usage.output_tokens == 6
    assert final.stop_reason == "end_turn"


def test_the_openai_sdk_gets_an_answer_augmented_from_a_knowledge_base(gateway, tenant):
    """`extra_headers` names a knowledge base; the answer cites the document it retrieved."""
    suffix = uuid.uuid4().hex[:8]
    gateway.admin("POST", f"/admin/v1/tenants/{tenant['id']}/departments", {"name": "people-" + suffix})
    gateway.admin("POST", f"/admin/v1/tenants/{tenant['id']}/knowledge-bases", {
        "name": "handbook-" + suffix, "department": "people-" + suffix,
        "embedding": {"credential": "team-openai", "model": "mock-embed-words"}})
    key = gateway.admin("POST", f"/admin/v1/tenants/{tenant['id']}/keys", {"role": "member", "department": "people-" + suffix})["key"]
    documents = {}
    for name, text in [("leave.md", "Parents receive sixteen weeks of paid parental leave."),
                       ("travel.md", "Flights are booked through the travel portal in economy class.")]:
        request = urllib.request.Request(
            f"{gateway.url}/v1/knowledge-bases/handbook-{suffix}/documents", method="POST",
            data=json.dumps({"name": name, "text": text}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 201
            documents[name] = json.loads(response.read())["id"]

    client = openai_client(gateway, key)
    raw = client.chat.completions.with_raw_response.create(
        model="team-openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "How many weeks of parental leave do parents receive?"}],
        extra_headers={"x-keyward-knowledge-base": "handbook-" + suffix, "x-keyward-top-k": "1"})
    completion = raw.parse()
    assert completion.choices[0].message.content == REPLY
    assert raw.headers["x-keyward-citations"].startswith(documents["leave.md"] + "#")
    # The sources went to the model: far more input than the question alone.
    assert completion.usage.prompt_tokens > 40
    row = gateway.ledger(raw.headers["x-keyward-request-id"])
    assert (row["status"], row["input_tokens"]) == ("ok", completion.usage.prompt_tokens)


def test_both_sdks_list_what_a_key_without_an_allow_list_can_call(gateway, tenant):
    # A key with no allow-list: every model the tenant's credentials serve, as each provider
    # lists them, addressed as label/model (each listing is a ledger row, `endpoint` models).
    listed = [model.id for model in openai_client(gateway, tenant["key"]).models.list()]
    assert "team-openai/gpt-4o-mini" in listed
    assert "team-openai/text-embedding-3-small" in listed
    assert "claude/claude-sonnet-4-5" in listed
    claude = [model.id for model in anthropic_client(gateway, tenant["key"]).models.list()]
    assert claude == listed
    limited = gateway.admin("POST", f"/admin/v1/tenants/{tenant['id']}/keys",
                            {"role": "member", "models": ["team-openai/gpt-4o"]})["key"]
    assert [model.id for model in openai_client(gateway, limited).models.list()] == ["team-openai/gpt-4o"]


def test_count_tokens_through_the_anthropic_sdk(gateway, tenant):
    client = anthropic_client(gateway, tenant["key"], max_retries=0)
    raw = client.messages.with_raw_response.count_tokens(model="claude/claude-sonnet-4-5", messages=MESSAGES)
    counted = raw.parse()
    assert counted.input_tokens > 0
    row = gateway.ledger(raw.headers["x-keyward-request-id"])
    assert row["endpoint"] == "count_tokens" and row["status"] == "ok"
    assert row["cost_micro_usd"] == 0, "Anthropic does not bill counting"
    assert row["credential_label"] == "claude"
    # Another provider's tokenizer is not Anthropic's: a clear refusal, no upstream call.
    calls_before = gateway.mock_calls()["total"]
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.count_tokens(model="team-openai/gpt-4o-mini", messages=MESSAGES)
    assert "Anthropic's tokenizer" in raised.value.body["error"]["message"]
    assert gateway.mock_calls()["total"] == calls_before
    # A body over server.max_body_bytes is refused before anything is sent.
    response = httpx.post(gateway.url + "/v1/messages/count_tokens", content=b"x" * (11 << 20),
                          headers={"x-api-key": tenant["key"], "anthropic-version": "2023-06-01",
                                   "content-type": "application/json"}, timeout=30)
    assert response.status_code in (400, 413)
    assert "max_body_bytes" in response.text
