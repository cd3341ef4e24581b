//! Knowledge bases end to end, on SQLite and (when the test script started one) PostgreSQL:
//! department isolation of every route, documents in (JSON and multipart) and their errors,
//! search and citations on a fixture, augmented chat on both surfaces, the embedding rows in
//! the ledger against the calls the mock counted, deletes, master-key rotation, interrupted
//! ingestion, and the platform meter.

use std::time::{Duration, Instant};

use keyward_core::{RequestId, Timestamp};
use keyward_test_db::TestDb;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::harness::{captured_logs, contains, TestApp};

/// A tenant with an embedding credential on the mock, departments `hr` and `sales`, a key of
/// each, a key of no department, a tenant admin key, and the `handbook` knowledge base of
/// `hr` on `mock-embed-words` (similar texts share words).
struct Setup {
    app: TestApp,
    tenant: String,
    secret: String,
    admin: String,
    hr: String,
    sales: String,
    nobody: String,
}

async fn backends() -> Vec<TestDb> {
    [Some(TestDb::sqlite()), TestDb::postgres().await]
        .into_iter()
        .flatten()
        .collect()
}

async fn member(app: &TestApp, tenant: &str, department: Option<&str>) -> String {
    let mut body = json!({"role": "member"});
    if let Some(department) = department {
        body["department"] = json!(department);
    }
    let response = app
        .operator(Method::POST, &format!("/admin/v1/tenants/{tenant}/keys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn setup(db: &TestDb) -> Setup {
    let app = TestApp::spawn_with(&[("KEYWARD_STORE_URL", db.url())]).await;
    let tenant = app.create_tenant("acme").await;
    let secret = format!("sk-emb-{}", RequestId::generate());
    app.connect(
        &tenant,
        &json!({"provider": "openai", "label": "emb", "secret": secret, "base_url": format!("{}/v1", app.mock_origin)}),
    )
    .await;
    for department in ["hr", "sales"] {
        let response = app
            .operator(
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/departments"),
            )
            .json(&json!({"name": department}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let (_, admin) = app.issue_key(&tenant, "admin").await;
    let hr = member(&app, &tenant, Some("hr")).await;
    let sales = member(&app, &tenant, Some("sales")).await;
    let nobody = member(&app, &tenant, None).await;
    let setup = Setup {
        app,
        tenant,
        secret,
        admin,
        hr,
        sales,
        nobody,
    };
    let created = setup
        .create_kb(json!({"name": "handbook", "department": "hr",
            "embedding": {"credential": "emb", "model": "mock-embed-words"},
            "chunk_tokens": 64, "chunk_overlap": 8}))
        .await;
    assert_eq!(created.status(), 201);
    setup
}

impl Setup {
    async fn create_kb(&self, body: Value) -> Response {
        self.app
            .operator(
                Method::POST,
                &format!("/admin/v1/tenants/{}/knowledge-bases", self.tenant),
            )
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn add(&self, key: &str, kb: &str, body: Value) -> (u16, Value) {
        let response = self
            .app
            .with_key(
                key,
                Method::POST,
                &format!("/v1/knowledge-bases/{kb}/documents"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn upload(
        &self,
        kb: &str,
        file_name: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> (u16, Value) {
        let boundary = "kwboundary7MA4YWxk";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {media_type}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = self
            .app
            .with_key(
                &self.hr,
                Method::POST,
                &format!("/v1/knowledge-bases/{kb}/documents"),
            )
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn search(&self, key: &str, kb: &str, query: &str) -> (u16, Value) {
        let response = self
            .app
            .with_key(
                key,
                Method::POST,
                &format!("/v1/knowledge-bases/{kb}/search"),
            )
            .json(&json!({"query": query, "top_k": 3}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn documents(&self, kb: &str) -> Vec<Value> {
        let response = self
            .app
            .with_key(
                &self.hr,
                Method::GET,
                &format!("/v1/knowledge-bases/{kb}/documents"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["data"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The id of a knowledge base of the tenant.
    async fn kb_id(&self, name: &str) -> String {
        let kb = self
            .app
            .operator_get(&format!(
                "/admin/v1/tenants/{}/knowledge-bases/{name}",
                self.tenant
            ))
            .await;
        kb["id"].as_str().unwrap().to_owned()
    }

    /// Every ledger row of the tenant.
    async fn ledger(&self) -> Vec<Value> {
        let usage = self
            .app
            .operator_get(&format!("/admin/v1/tenants/{}/usage", self.tenant))
            .await;
        usage["data"].as_array().unwrap().clone()
    }
}

/// Documents about distinct subjects, each with words the others lack.
const FIXTURE: &[(&str, &str)] = &[
    ("travel.md", "# Travel policy\n\nEmployees book flights through the travel portal. Economy class for flights under six hours. Hotel stays need a receipt.\n\n## Per diem\n\nThe per diem covers meals and local transport abroad."),
    ("security.md", "# Security\n\nPasswords rotate every ninety days. Laptops use full disk encryption. Report phishing emails to the security desk."),
    ("leave.md", "# Parental leave\n\nParents receive sixteen weeks of paid parental leave. Adoption counts the same as birth."),
    ("payroll.txt", "Payroll runs on the last business day of each month. Payslips are available in the payroll system. Overtime is paid the following month."),
];

async fn load_fixture(setup: &Setup) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for (name, text) in FIXTURE {
        let content_type = if name.ends_with(".md") {
            "text/markdown"
        } else {
            "text/plain"
        };
        let (status, body) = setup
            .add(&setup.hr, "handbook", json!({"name": name, "text": text, "content_type": content_type, "metadata": {"owner": "people-team"}}))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "ready");
        assert!(body["chunks"].as_u64().unwrap() >= 1);
        assert!(body.get("text").is_none());
        ids.push(((*name).to_owned(), body["id"].as_str().unwrap().to_owned()));
    }
    ids
}

#[tokio::test]
async fn knowledge_bases_answer_only_their_department() {
    for db in backends().await {
        let setup = setup(&db).await;
        let (status, document) = setup
            .add(
                &setup.hr,
                "handbook",
                json!({"name": "a.md", "text": "Flights and hotels."}),
            )
            .await;
        assert_eq!(status, 201, "{document}");
        let id = document["id"].as_str().unwrap().to_owned();
        let other_tenant = setup.app.create_tenant("other").await;
        let (_, other_admin) = setup.app.issue_key(&other_tenant, "admin").await;
        let kb_id = setup.kb_id("handbook").await;
        let routes = [
            (Method::GET, "documents".to_owned(), None),
            (
                Method::POST,
                "documents".to_owned(),
                Some(json!({"name": "x", "text": "y"})),
            ),
            (Method::GET, format!("documents/{id}"), None),
            (Method::DELETE, format!("documents/{id}"), None),
            (
                Method::POST,
                "search".to_owned(),
                Some(json!({"query": "flights"})),
            ),
        ];
        for key in [&setup.sales, &setup.nobody, &other_admin] {
            for kb in ["handbook", kb_id.as_str()] {
                for (method, path, body) in &routes {
                    let mut request = setup.app.with_key(
                        key,
                        method.clone(),
                        &format!("/v1/knowledge-bases/{kb}/{path}"),
                    );
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    let response = request.send().await.unwrap();
                    assert_eq!(response.status(), 404, "{method} {path}");
                    let error: Value = response.json().await.unwrap();
                    assert_eq!(error["error"]["code"], "not_found");
                }
            }
        }
        // The other tenant's admin cannot reach the knowledge base through the admin API.
        let response = setup
            .app
            .with_key(
                &other_admin,
                Method::GET,
                &format!("/admin/v1/tenants/{}/knowledge-bases", setup.tenant),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        // The owning department and the tenant admin can.
        for key in [&setup.hr, &setup.admin] {
            let (status, hits) = setup.search(key, "handbook", "flights").await;
            assert_eq!(status, 200, "{hits}");
            assert_eq!(hits["data"][0]["document_id"], id.as_str());
        }
        assert_eq!(
            setup.documents("handbook").await.len(),
            1,
            "nothing was added or deleted"
        );
    }
}

#[tokio::test]
async fn searches_and_augmented_calls_cite_the_right_document() {
    for db in backends().await {
        let setup = setup(&db).await;
        let ids = load_fixture(&setup).await;
        let id_of = |name: &str| ids.iter().find(|(n, _)| n == name).unwrap().1.clone();
        for (query, expected) in [
            (
                "how many weeks of parental leave after adoption",
                "leave.md",
            ),
            (
                "when do passwords rotate and how to report phishing",
                "security.md",
            ),
            (
                "which class for flights, and the per diem for meals",
                "travel.md",
            ),
            ("payslips and overtime in payroll", "payroll.txt"),
        ] {
            let (status, hits) = setup.search(&setup.hr, "handbook", query).await;
            assert_eq!(status, 200, "{hits}");
            assert_eq!(
                hits["data"][0]["document_id"],
                id_of(expected).as_str(),
                "{query}: {hits}"
            );
            assert_eq!(hits["data"][0]["document_name"], expected);
            assert!(hits["data"][0]["score"].as_f64().unwrap() > 0.0);
            let scores: Vec<f64> = hits["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|hit| hit["score"].as_f64().unwrap())
                .collect();
            assert!(
                scores.windows(2).all(|pair| pair[0] >= pair[1]),
                "best first: {scores:?}"
            );
        }

        // OpenAI shape, not streamed; the model is the same credential's chat model.
        let chat = setup
            .app
            .with_key(&setup.hr, Method::POST, "/v1/chat/completions")
            .header("x-keyward-knowledge-base", "handbook")
            .header("x-keyward-top-k", "2")
            .json(&json!({"model": "emb/gpt-4o-mini", "messages": [{"role": "user", "content": "How long is parental leave for adoption?"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(chat.status(), 200);
        let citations = citations_of(&chat);
        assert!(
            citations.starts_with(&format!("{}#", id_of("leave.md"))),
            "{citations}"
        );
        assert_eq!(citations.split(", ").count(), 2);

        // Anthropic shape, streamed, through the same key and knowledge base (by id).
        let kb_id = setup.kb_id("handbook").await;
        let messages = setup
            .app
            .with_key(&setup.hr, Method::POST, "/v1/messages")
            .header("x-keyward-knowledge-base", kb_id.as_str())
            .json(&json!({"model": "emb/gpt-4o-mini", "max_tokens": 20, "stream": true, "system": "Be brief.",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Where do I report phishing emails?"}]}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(messages.status(), 200);
        let citations = citations_of(&messages);
        assert!(
            citations.starts_with(&format!("{}#", id_of("security.md"))),
            "{citations}"
        );
        let _ = messages.text().await.unwrap();

        // Every embedding call has its ledger row, tagged with the knowledge base, and the
        // mock counted exactly as many calls on the tenant's key.
        let rows = wait_for_settled(&setup).await;
        let embedding_rows: Vec<&Value> = rows
            .iter()
            .filter(|row| row["endpoint"] == "embeddings")
            .collect();
        assert!(
            embedding_rows
                .iter()
                .all(|row| row["tags"]["kb"] == "handbook"),
            "{embedding_rows:?}"
        );
        let searches = embedding_rows
            .iter()
            .filter(|row| row["tags"]["purpose"] == "search")
            .count();
        assert_eq!(searches, 4 + 2, "four searches and two augmented calls");
        assert_eq!(
            setup.app.mock.calls(&setup.secret),
            rows.len() as u64,
            "one upstream call per ledger row on the tenant's key"
        );
        assert_eq!(
            rows.iter()
                .filter(|row| row["endpoint"] != "embeddings")
                .count(),
            2
        );

        // The platform meter: documents stored and retrievals issued today, no tokens.
        let invoice = setup
            .app
            .operator_get(&format!(
                "/admin/v1/tenants/{}/platform-invoice",
                setup.tenant
            ))
            .await;
        let today = invoice["days"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(today["date"], Timestamp::now().utc_date());
        assert_eq!(today["documents_stored"], 4, "{invoice}");
        assert_eq!(today["retrievals_issued"], 6, "{invoice}");
        assert_eq!(today["requests_routed"], 2, "{invoice}");
        let csv = setup
            .app
            .operator(
                Method::GET,
                &format!(
                    "/admin/v1/tenants/{}/platform-invoice?format=csv",
                    setup.tenant
                ),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            csv.starts_with("date,requests_routed,documents_stored,retrievals_issued\n"),
            "{csv}"
        );
        assert!(
            csv.contains(&format!("{},2,4,6", Timestamp::now().utc_date())),
            "{csv}"
        );
    }
}

/// `x-keyward-citations` of an answer.
fn citations_of(response: &Response) -> String {
    response.headers()["x-keyward-citations"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The tenant's ledger once no row is pending.
async fn wait_for_settled(setup: &Setup) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let rows = setup.ledger().await;
        if rows.iter().all(|row| row["status"] != "pending")
            || started.elapsed() > Duration::from_secs(10)
        {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn deleted_documents_and_knowledge_bases_leave_search_at_once() {
    for db in backends().await {
        let setup = setup(&db).await;
        let ids = load_fixture(&setup).await;
        let leave = &ids.iter().find(|(name, _)| name == "leave.md").unwrap().1;
        let deleted = setup
            .app
            .with_key(
                &setup.hr,
                Method::DELETE,
                &format!("/v1/knowledge-bases/handbook/documents/{leave}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        let (_, hits) = setup
            .search(&setup.hr, "handbook", "parental leave adoption weeks")
            .await;
        assert!(
            hits["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|hit| hit["document_id"] != leave.as_str()),
            "{hits}"
        );
        assert_eq!(setup.documents("handbook").await.len(), 3);
        let again = setup
            .app
            .with_key(
                &setup.hr,
                Method::GET,
                &format!("/v1/knowledge-bases/handbook/documents/{leave}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 404);

        let store = setup.app.store().await;
        let kb = store
            .knowledge_base(setup.tenant.parse().unwrap(), "handbook")
            .await
            .unwrap()
            .unwrap();
        assert!(!store
            .knowledge_vectors(kb.id, None, 1000)
            .await
            .unwrap()
            .is_empty());
        let removed = setup
            .app
            .operator(
                Method::DELETE,
                &format!(
                    "/admin/v1/tenants/{}/knowledge-bases/handbook",
                    setup.tenant
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), 204);
        assert!(
            store
                .knowledge_vectors(kb.id, None, 1000)
                .await
                .unwrap()
                .is_empty(),
            "vectors and text gone"
        );
        assert!(store.documents(kb.id).await.unwrap().is_empty());
        let (status, _) = setup.search(&setup.hr, "handbook", "flights").await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn bad_documents_and_embeddings_get_a_clear_error_and_leave_nothing_searchable() {
    for db in backends().await {
        let setup = setup(&db).await;
        let error_of = |status: u16, body: &Value, code: &str, words: &str| {
            assert_eq!(body["error"]["code"], code, "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(words), "{status}: {message}");
        };
        let (status, body) = setup
            .add(
                &setup.hr,
                "handbook",
                json!({"name": "e.md", "text": "  \n "}),
            )
            .await;
        assert_eq!(status, 400);
        error_of(status, &body, "invalid_request", "empty");
        let (status, body) = setup
            .upload(
                "handbook",
                "photo.png",
                "image/png",
                b"\x89PNG\r\n\x1a\n\0\0",
            )
            .await;
        assert_eq!(status, 400);
        error_of(status, &body, "invalid_request", "image/png");
        let (status, body) = setup
            .upload("handbook", "notes.txt", "text/plain", b"caf\xe9 au lait")
            .await;
        assert_eq!(status, 400);
        error_of(status, &body, "invalid_request", "UTF-8");
        let (status, body) = setup
            .upload("handbook", "dump.txt", "text/plain", b"text\0binary")
            .await;
        assert_eq!(status, 400);
        error_of(status, &body, "invalid_request", "binary");
        let huge = "word ".repeat(20_000);
        let (status, body) = setup
            .add(
                &setup.hr,
                "handbook",
                json!({"name": "big.txt", "text": huge}),
            )
            .await;
        assert_eq!(status, 400);
        error_of(status, &body, "invalid_request", "server.max_body_bytes");
        let (status, body) = setup
            .upload(
                "handbook",
                "notes.md",
                "application/octet-stream",
                b"# Notes\n\nUploaded as a file.",
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["name"], "notes.md");
        assert_eq!(body["content_type"], "text/markdown");

        // A name that exists; a credential that cannot embed.
        let duplicate = setup
            .create_kb(json!({"name": "handbook", "department": "sales", "embedding": {"credential": "emb", "model": "mock-embed-words"}}))
            .await;
        assert_eq!(duplicate.status(), 409);
        setup
            .app
            .connect(&setup.tenant, &json!({"provider": "anthropic", "label": "claude", "secret": format!("sk-ant-{}", RequestId::generate()), "base_url": setup.app.mock_origin}))
            .await;
        let wrong = setup
            .create_kb(json!({"name": "claude-kb", "department": "hr", "embedding": {"credential": "claude", "model": "x"}}))
            .await;
        assert_eq!(wrong.status(), 400);
        let body: Value = wrong.json().await.unwrap();
        error_of(400, &body, "invalid_request", "serves no embeddings");

        // A provider that returns fewer vectors, vectors of two sizes, or fails halfway: the
        // document ends failed with the reason and none of it is searchable.
        for (name, model) in [
            ("short", "mock-embed-short"),
            ("ragged", "mock-embed-ragged"),
            ("halfway", "mock-embed-words"),
        ] {
            let created = setup
                .create_kb(json!({"name": name, "department": "hr", "embedding": {"credential": "emb", "model": model}, "chunk_tokens": 32, "chunk_overlap": 0}))
                .await;
            assert_eq!(created.status(), 201);
            let mut text =
                "Paragraph about ledgers and invoices and budgets for the team.\n\n".repeat(200);
            text.push_str("The last paragraph says MOCK_FAIL_EMBED.");
            let (status, body) = setup
                .add(&setup.hr, name, json!({"name": "long.txt", "text": text}))
                .await;
            assert_eq!(status, 502, "{name}: {body}");
            assert_eq!(body["error"]["code"], "upstream_error", "{body}");
            assert!(
                !body.to_string().contains("Paragraph about ledgers"),
                "no content in errors"
            );
            let documents = setup.documents(name).await;
            assert_eq!(documents[0]["status"], "failed", "{documents:?}");
            let reason = documents[0]["error"].as_str().unwrap();
            assert!(reason.contains("could not be indexed"), "{documents:?}");
            assert!(!reason.contains("Paragraph"), "no content in the reason");
            if name == "halfway" {
                let progress = documents[0]["progress"].as_f64().unwrap();
                assert!(progress > 0.0 && progress < 1.0, "{documents:?}");
            }
            let (status, hits) = setup.search(&setup.hr, name, "ledgers and invoices").await;
            assert_eq!(status, 200, "{hits}");
            assert_eq!(
                hits["data"].as_array().unwrap().len(),
                0,
                "{name}: nothing half-indexed"
            );
        }

        // A disabled credential: refused before any upstream call.
        let credential = setup.app.credential_id(&setup.tenant, "emb").await;
        let disabled = setup
            .app
            .operator(
                Method::POST,
                &format!(
                    "/admin/v1/tenants/{}/credentials/{credential}/disable",
                    setup.tenant
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(disabled.status(), 200);
        let before = setup.app.mock.calls(&setup.secret);
        let (status, body) = setup
            .add(
                &setup.hr,
                "handbook",
                json!({"name": "x.md", "text": "Some text."}),
            )
            .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "credential_disabled");
        assert_eq!(setup.app.mock.calls(&setup.secret), before);
    }
}

#[tokio::test]
async fn master_key_rotation_rewraps_documents_and_chunks() {
    for db in backends().await {
        let setup = setup(&db).await;
        load_fixture(&setup).await;
        let started = setup
            .app
            .operator(Method::POST, "/admin/v1/masterkey/rotate")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            let status = setup.app.operator_get("/admin/v1/masterkey").await;
            if status["rewrap"]["state"] == "done" || Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status["rewrap"]["state"], "done", "{status}");
        assert_eq!(
            status["versions"][0]["rows"], 0,
            "nothing left on version 1: {status}"
        );
        let store = setup.app.store().await;
        let kb = store
            .knowledge_base(setup.tenant.parse().unwrap(), "handbook")
            .await
            .unwrap()
            .unwrap();
        for document in store.documents(kb.id).await.unwrap() {
            assert_eq!(document.sealed.unwrap().key_version.get(), 2);
        }
        let (status, hits) = setup
            .search(&setup.hr, "handbook", "payslips overtime payroll")
            .await;
        assert_eq!(status, 200);
        assert_eq!(hits["data"][0]["document_name"], "payroll.txt");
        assert!(hits["data"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Payroll runs"));
    }
}

#[tokio::test]
async fn a_document_left_ingesting_by_a_process_that_is_gone_ends_failed() {
    for db in backends().await {
        let setup = setup(&db).await;
        let store = setup.app.store().await;
        let kb = store
            .knowledge_base(setup.tenant.parse().unwrap(), "handbook")
            .await
            .unwrap()
            .unwrap();
        let now = Timestamp::now();
        let document = keyward_store::DocumentRecord {
            id: keyward_core::DocumentId::generate(),
            tenant_id: kb.tenant_id,
            kb_id: kb.id,
            sealed: None,
            content_type: "text/plain".to_owned(),
            bytes: 10,
            chunks: 100,
            embedded: 40,
            status: keyward_store::DocumentStatus::Ingesting,
            error: None,
            instance_id: Some(format!("gone-{}", RequestId::generate())),
            created_at: now,
            updated_at: now,
        };
        store.insert_document(&document).await.unwrap();
        // Nothing is searchable yet: the question is refused, before any embedding call.
        let calls = setup.app.mock.calls(&setup.secret);
        let (status, refused) = setup.search(&setup.hr, "handbook", "anything").await;
        assert_eq!(status, 409, "{refused}");
        assert!(refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 still ingesting"));
        assert_eq!(setup.app.mock.calls(&setup.secret), calls);

        // A delete while a document is ingesting wins: its chunks are never written.
        let racing = keyward_store::DocumentRecord {
            id: keyward_core::DocumentId::generate(),
            instance_id: Some(format!("other-{}", RequestId::generate())),
            ..document.clone()
        };
        store.insert_document(&racing).await.unwrap();
        let deleted = setup
            .app
            .with_key(
                &setup.hr,
                Method::DELETE,
                &format!("/v1/knowledge-bases/handbook/documents/{}", racing.id),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        let chunk = keyward_store::NewChunk {
            id: keyward_core::ChunkId::generate(),
            position: 0,
            sealed: keyward_core::SealedSecret {
                blob: "AAAA".to_owned(),
                key_version: keyward_core::KeyVersion::new(1).unwrap(),
            },
            vector: vec![0; 32],
        };
        let finished = store
            .finish_document(kb.tenant_id, kb.id, racing.id, &[chunk], 8)
            .await
            .unwrap();
        assert_eq!(finished, keyward_store::Finished::Gone);
        assert!(store
            .knowledge_vectors(kb.id, None, 1000)
            .await
            .unwrap()
            .is_empty());

        // A process starting on the same database sweeps what gone processes left.
        let _sibling = setup.app.sibling(&[("KEYWARD_STORE_URL", db.url())]).await;
        let documents = setup.documents("handbook").await;
        assert_eq!(documents[0]["status"], "failed", "{documents:?}");
        assert!(documents[0]["error"]
            .as_str()
            .unwrap()
            .contains("upload the document again"));
        let (status, hits) = setup.search(&setup.hr, "handbook", "anything").await;
        assert_eq!((status, hits["data"].as_array().unwrap().len()), (200, 0));
    }
}

#[tokio::test]
async fn document_text_and_names_reach_no_log_metric_error_or_database_file() {
    // SQLite: every byte of the database files is searched too.
    let db = TestDb::sqlite();
    let setup = setup(&db).await;
    let canary_text = "CANARYchunk5b1e9d7c3a";
    let canary_name = "CANARYname0f4e8a2c6b";
    let canary_query = "CANARYquery7d3b1f9e5c";
    let canary_meta = "CANARYmeta2a8c4e6f0d";
    let text = format!("# Quarterly plan\n\nThe code word is {canary_text}. Budgets are reviewed in March.\n\n## Risks\n\nNone known.");
    let (status, body) = setup
        .add(&setup.hr, "handbook", json!({"name": canary_name, "text": text, "content_type": "text/markdown", "metadata": {"note": canary_meta}}))
        .await;
    assert_eq!(status, 201, "{body}");
    // Refusals carrying the canaries: a binary upload, an over-long name, a bad KB.
    let mut errors = String::new();
    let (_, refused) = setup
        .upload(
            "handbook",
            &format!("{canary_name}.bin"),
            "application/x-canary",
            format!("{canary_text}\0").as_bytes(),
        )
        .await;
    errors.push_str(&refused.to_string());
    let (_, refused) = setup
        .add(
            &setup.hr,
            "handbook",
            json!({"name": canary_name.repeat(40), "text": canary_text}),
        )
        .await;
    errors.push_str(&refused.to_string());
    let (_, refused) = setup
        .add(
            &setup.hr,
            "no-such-kb",
            json!({"name": canary_name, "text": canary_text}),
        )
        .await;
    errors.push_str(&refused.to_string());
    let (status, hits) = setup
        .search(&setup.hr, "handbook", &format!("code word {canary_query}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        hits.to_string().contains(canary_text),
        "the search answer carries the text to its caller"
    );
    let chat = setup
        .app
        .with_key(&setup.hr, Method::POST, "/v1/chat/completions")
        .header("x-keyward-knowledge-base", "handbook")
        .json(&json!({"model": "emb/gpt-4o-mini", "messages": [{"role": "user", "content": format!("What is the code word? {canary_query}")}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    let _ = chat.text().await.unwrap();
    let listed = setup.documents("handbook").await;
    assert_eq!(listed[0]["name"], canary_name, "the owner sees the name");
    assert_eq!(listed[0]["metadata"]["note"], canary_meta);
    assert!(
        !listed[0].to_string().contains(canary_text),
        "never the text"
    );
    wait_for_settled(&setup).await;

    let logs = captured_logs();
    let metrics = setup.app.metrics_text().await;
    let database = setup.app.database_bytes();
    for canary in [canary_text, canary_name, canary_query, canary_meta] {
        assert!(!logs.contains(canary), "{canary} in the logs");
        assert!(!metrics.contains(canary), "{canary} in the metrics");
        assert!(!errors.contains(canary), "{canary} in an error: {errors}");
        assert!(
            !contains(&database, canary),
            "{canary} in the database files"
        );
    }
}

#[tokio::test]
async fn budgets_and_prices_govern_embedding_calls_like_any_call() {
    let db = TestDb::sqlite();
    let setup = setup(&db).await;
    let tenant = setup.tenant.clone();
    let put = |path: &str, body: Value| {
        setup
            .app
            .operator(Method::PUT, &format!("/admin/v1/tenants/{tenant}/{path}"))
            .json(&body)
            .send()
    };
    // A hard cap on an unpriced embedding model: refused before any upstream call.
    let capped = put(
        "budgets",
        json!({"scope": "tenant", "period": "day", "hard_limit_usd": "0.000010"}),
    )
    .await
    .unwrap();
    assert_eq!(capped.status(), 200);
    let before = setup.app.mock.calls(&setup.secret);
    let (status, body) = setup
        .add(
            &setup.hr,
            "handbook",
            json!({"name": "a.md", "text": "Flights and hotels and receipts."}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("model_unpriced")),
        "{body}"
    );
    assert_eq!(setup.app.mock.calls(&setup.secret), before);
    // Priced, the worst case of a long document does not fit the cap: the document fails with
    // the budget's reason, nothing reaches the provider.
    let priced = put(
        "prices",
        json!({"provider": "openai", "model": "mock-embed-words", "input": "100", "output": "0"}),
    )
    .await
    .unwrap();
    assert_eq!(priced.status(), 200, "{}", priced.text().await.unwrap());
    let (status, body) = setup
        .add(
            &setup.hr,
            "handbook",
            json!({"name": "b.md", "text": "Flights and hotels and receipts. ".repeat(40)}),
        )
        .await;
    assert_eq!(body["error"]["code"], "budget_exceeded", "{status} {body}");
    assert_eq!(setup.app.mock.calls(&setup.secret), before);
    let documents = setup.documents("handbook").await;
    assert!(
        documents
            .iter()
            .all(|document| document["status"] == "failed"),
        "{documents:?}"
    );
    assert!(
        documents
            .iter()
            .any(|document| document["error"].as_str().unwrap().contains("budget")),
        "{documents:?}"
    );
}

#[tokio::test]
async fn augmented_calls_reach_translated_providers_with_the_sources() {
    let db = TestDb::sqlite();
    let setup = setup(&db).await;
    let ids = load_fixture(&setup).await;
    let leave = &ids.iter().find(|(name, _)| name == "leave.md").unwrap().1;
    setup
        .app
        .connect(&setup.tenant, &json!({"provider": "anthropic", "label": "claude", "secret": format!("sk-ant-{}", RequestId::generate()), "base_url": setup.app.mock_origin}))
        .await;
    let question = "How many weeks of parental leave after an adoption?";
    let plain = setup
        .app
        .with_key(&setup.hr, Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "claude/claude-haiku-4-5", "messages": [{"role": "user", "content": question}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let plain: Value = plain.json().await.unwrap();
    let augmented = setup
        .app
        .with_key(&setup.hr, Method::POST, "/v1/chat/completions")
        .header("x-keyward-knowledge-base", "handbook")
        .json(&json!({"model": "claude/claude-haiku-4-5", "messages": [{"role": "user", "content": question}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(augmented.status(), 200);
    let citations = citations_of(&augmented);
    assert!(citations.starts_with(&format!("{leave}#")), "{citations}");
    let augmented: Value = augmented.json().await.unwrap();
    // The sources reached Anthropic: the provider counted far more input tokens.
    let input = |answer: &Value| answer["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        input(&augmented) > input(&plain) + 40,
        "{plain} {augmented}"
    );
}
