//! Micro-benchmarks of the pieces every call goes through: opening a sealed credential, finding
//! a platform key, parsing a provider's SSE stream with usage extraction, and the OpenAI ⇄
//! Anthropic translation. Run: `cd bench && cargo bench` (results in `docs/performance.md`).

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keyward_core::{PlatformKeyId, TenantId, Timestamp};
use keyward_store::{PlatformKeyRecord, Role, Store, TenantRecord};
use keyward_vault::{FileSource, RowBinding, Vault};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn seal_and_open(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Arc::new(FileSource::new(dir.path().join("master.key")));
    source.create_if_absent().expect("keyring");
    let rt = runtime();
    let vault = rt.block_on(Vault::load(source)).expect("vault");
    let binding = RowBinding {
        tenant: TenantId::generate(),
        record: "01a2-credential".into(),
        field: "credential.secret",
    };
    let secret = b"sk-proj-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";
    let sealed = vault.seal(secret, &binding).expect("seal");
    c.bench_function("vault/seal", |b| b.iter(|| vault.seal(black_box(secret), &binding)));
    c.bench_function("vault/open", |b| {
        b.to_async(&rt).iter(|| async { vault.open(black_box(&sealed), &binding).await })
    });
}

fn platform_key_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = runtime();
    let store = rt
        .block_on(Store::open(&format!("sqlite://{}", dir.path().join("kw.db").display())))
        .expect("store");
    let tenant = TenantId::generate();
    let key = "kw_ABCDEFGHIJKLsecretsecretsecretsecretsecretsecretsec";
    let hash = hex(Sha256::digest(key.as_bytes()).as_slice());
    rt.block_on(async {
        store
            .insert_tenant(&TenantRecord { id: tenant, name: "bench".into(), created_at: Timestamp::now() })
            .await
            .expect("tenant");
        store
            .insert_platform_key(&PlatformKeyRecord {
                id: PlatformKeyId::generate(),
                tenant_id: tenant,
                lookup: "ABCDEFGHIJKL".into(),
                key_hash: hash.clone(),
                display_prefix: "kw_ABCDEF…".into(),
                name: None,
                role: Role::Member,
                models: None,
                department_id: None,
                expires_at: None,
                revoked_at: None,
                created_at: Timestamp::now(),
                rpm_limit: None,
                tpm_limit: None,
            })
            .await
            .expect("key");
    });
    // What authentication does per request: find by lookup id, hash, compare in constant time.
    c.bench_function("platform_key/lookup_and_verify (SQLite)", |b| {
        b.to_async(&rt).iter(|| async {
            let record = store.platform_key_by_lookup("ABCDEFGHIJKL").await.expect("query").expect("row");
            let presented = hex(Sha256::digest(black_box(key).as_bytes()).as_slice());
            bool::from(presented.as_bytes().ct_eq(record.key_hash.as_bytes()))
        })
    });
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn sse_parsing(c: &mut Criterion) {
    // A 200-token streamed completion with usage in the last chunk, arriving in 1,400-byte
    // network reads.
    let mut stream = String::new();
    for index in 0..200 {
        let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": {"content": format!(" word{index}")}, "finish_reason": null}]});
        stream.push_str(&format!("data: {chunk}\n\n"));
    }
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18", "choices": [],
        "usage": {"prompt_tokens": 25, "completion_tokens": 200, "total_tokens": 225, "prompt_tokens_details": {"cached_tokens": 0}}});
    stream.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    let chunks: Vec<Bytes> = stream.as_bytes().chunks(1400).map(Bytes::copy_from_slice).collect();
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("openai_stream_200_tokens_with_usage", |b| {
        b.iter(|| keyward_router::bench_internals::parse_openai_stream(black_box(&chunks)))
    });
    group.finish();
}

fn translation(c: &mut Criterion) {
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 256, "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant for the finance team."},
            {"role": "user", "content": "Summarise the attached quarterly figures in three bullet points."},
            {"role": "assistant", "content": "Sure — please paste the figures."},
            {"role": "user", "content": [{"type": "text", "text": "Revenue 12.1M, costs 9.4M, headcount 84."}]}
        ]});
    let request = request.as_object().expect("object").clone();
    c.bench_function("translate/openai_to_anthropic_request", |b| {
        b.iter(|| keyward_router::bench_internals::openai_to_anthropic_request(black_box(&request), "claude-sonnet-4-5"))
    });
    let message = json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "- Revenue 12.1M\n- Costs 9.4M\n- Headcount 84"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 61, "output_tokens": 24, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}});
    c.bench_function("translate/anthropic_to_openai_response", |b| {
        b.iter(|| keyward_router::bench_internals::anthropic_to_openai_response(black_box(&message)))
    });
}

/// A Teams request's token check with the keys cached: parse, RS256 signature, claims,
/// endorsement, serviceurl (issue #22: target ≤ 50 µs).
fn connector_verification(c: &mut Criterion) {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("temp dir");
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl").args(args).current_dir(dir.path()).output().expect("openssl");
        assert!(output.status.success(), "openssl {args:?}");
        output.stdout
    };
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "key.pem"]);
    let modulus = String::from_utf8(openssl(&["rsa", "-in", "key.pem", "-noout", "-modulus"])).expect("text");
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "n": n, "e": "AQAB", "endorsements": ["msteams"]}]});
    let keys = keyward_connectors::KeySet::from_jwks(&serde_json::to_vec(&jwks).expect("json")).expect("keys");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let claims = json!({"iss": "https://api.botframework.com", "aud": "app-1", "exp": now + 3600, "nbf": now - 10,
                        "serviceurl": "https://smba.trafficmanager.net/emea/"});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1".to_owned());
    let pem = std::fs::read(dir.path().join("key.pem")).expect("key");
    let token = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("pem")).expect("sign");
    c.bench_function("connectors/verify_teams_token (keys cached)", |b| {
        b.iter(|| {
            keyward_connectors::verify::teams(black_box(&token), &keys, "app-1", "msteams", "https://smba.trafficmanager.net/emea")
                .expect("valid")
        })
    });
}

criterion_group!(hot_path, seal_and_open, platform_key_lookup, sse_parsing, translation, connector_verification);
criterion_main!(hot_path);
