//! `keyward kb`: knowledge bases — create, list, ingest files and directories, search.
//!
//! Ingestion runs as the operator on the tenant's scope: every embedding call is a ledger row
//! on the knowledge base's credential (no platform key). File contents and names are read
//! into `BodyText` and never printed; search prints the hits' text, which is what was asked.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use keyward_core::BodyText;
use keyward_domain::kb::{decode, kind_of_upload};
use keyward_domain::{DocumentInput, Keyward, KnowledgeBaseInput};
use keyward_http::views::KnowledgeBaseView;
use serde::Serialize;

use crate::output::{or_dash, Output, Table};

use super::{emit_one_or_list, scope_of};

#[derive(Subcommand, Debug)]
pub(super) enum KbCommand {
    /// Create a knowledge base owned by a department.
    Create {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Owning department (name or id): its platform keys search it.
        #[arg(long)]
        department: String,
        /// Knowledge base name (letters, digits, '-', '_', '.').
        #[arg(long)]
        name: String,
        /// Embedding target `LABEL/MODEL`: the tenant's credential and its embedding model.
        #[arg(long)]
        embedding: String,
        /// Chunk size in tokens of cl100k_base (default 400).
        #[arg(long)]
        chunk_tokens: Option<u32>,
        /// Tokens shared by consecutive chunks (default 60).
        #[arg(long)]
        chunk_overlap: Option<u32>,
    },
    /// List a tenant's knowledge bases.
    List {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
    },
    /// Add files (.txt, .md) or directories of them to a knowledge base.
    Ingest {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Knowledge base name or id.
        #[arg(long)]
        kb: String,
        /// Files or directories (searched recursively for .txt and .md files).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Search a knowledge base (the question is embedded on its credential).
    Search {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Knowledge base name or id.
        #[arg(long)]
        kb: String,
        /// How many chunks to print (1 to 50).
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// The question.
        query: String,
    },
}

/// One file's outcome.
#[derive(Serialize)]
struct IngestedFile {
    path: String,
    id: Option<String>,
    status: &'static str,
    chunks: u64,
    error: Option<String>,
}

#[derive(Serialize)]
struct IngestSummary {
    ingested: usize,
    failed: usize,
    chunks: u64,
    files: Vec<IngestedFile>,
}

pub(super) async fn kb(
    keyward: &Keyward,
    output: &Output,
    command: KbCommand,
    max_document_bytes: usize,
) -> anyhow::Result<()> {
    match command {
        KbCommand::Create {
            tenant,
            department,
            name,
            embedding,
            chunk_tokens,
            chunk_overlap,
        } => {
            let Some((credential, model)) = embedding.split_once('/') else {
                bail!("--embedding is LABEL/MODEL, e.g. team-openai/text-embedding-3-small");
            };
            let scope = scope_of(keyward, &tenant).await?;
            let created = keyward
                .create_knowledge_base(
                    &scope,
                    KnowledgeBaseInput {
                        name,
                        department,
                        credential: credential.to_owned(),
                        model: model.to_owned(),
                        chunk_tokens,
                        chunk_overlap,
                    },
                )
                .await?;
            emit_one_or_list(output, vec![KnowledgeBaseView::from(created)], true, table)
        }
        KbCommand::List { tenant } => {
            let scope = scope_of(keyward, &tenant).await?;
            let views = keyward
                .knowledge_bases(&scope)
                .await?
                .into_iter()
                .map(KnowledgeBaseView::from)
                .collect();
            emit_one_or_list(output, views, false, table)
        }
        KbCommand::Ingest { tenant, kb, paths } => {
            ingest(keyward, output, &tenant, &kb, &paths, max_document_bytes).await
        }
        KbCommand::Search {
            tenant,
            kb,
            top_k,
            query,
        } => search(keyward, output, &tenant, &kb, top_k, query).await,
    }
}

fn table(views: &[KnowledgeBaseView]) -> Table {
    Table::new(vec![
        "ID",
        "NAME",
        "DEPARTMENT",
        "EMBEDDING",
        "DOCUMENTS",
        "CHUNKS",
        "CREATED",
    ])
    .rows(views.iter().map(|view| {
        vec![
            view.id.clone(),
            view.name.clone(),
            view.department.clone(),
            format!("{}/{}", view.embedding.credential, view.embedding.model),
            view.documents.to_string(),
            view.chunks.to_string(),
            view.created_at.clone(),
        ]
    }))
}

/// Every .txt/.md file under `paths`, in a stable order.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read directory {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect();
            entries.sort();
            let nested: Vec<PathBuf> = entries
                .into_iter()
                .filter(|entry| entry.is_dir() || is_document(entry))
                .collect();
            files.extend(collect_files(&nested)?);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{} is not a file or directory", path.display());
        }
    }
    Ok(files)
}

fn is_document(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .and_then(keyward_domain::kb::ContentKind::from_file_name)
        .is_some()
}

/// Reads one file into a document (its path as the name).
fn read_document(path: &Path, max_bytes: usize) -> anyhow::Result<DocumentInput> {
    let size = std::fs::metadata(path)?.len();
    if size > max_bytes as u64 {
        bail!("{size} bytes is over server.max_body_bytes ({max_bytes}); split the file");
    }
    let name = path.display().to_string();
    let kind = kind_of_upload(None, Some(&name))?;
    let (text, kind) = decode(std::fs::read(path)?, kind)?;
    Ok(DocumentInput {
        name: BodyText::new(name),
        text,
        kind,
        metadata: BodyText::new(String::new()),
    })
}

async fn ingest(
    keyward: &Keyward,
    output: &Output,
    tenant: &str,
    kb: &str,
    paths: &[PathBuf],
    max_bytes: usize,
) -> anyhow::Result<()> {
    let scope = scope_of(keyward, tenant).await?;
    let access = keyward.knowledge_access_for_scope(&scope);
    let files = collect_files(paths)?;
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = IngestSummary {
        ingested: 0,
        failed: 0,
        chunks: 0,
        files: Vec::new(),
    };
    for path in files {
        let outcome = match read_document(&path, max_bytes) {
            Ok(document) => keyward
                .add_document(&access, kb, document)
                .await
                .map_err(anyhow::Error::from),
            Err(err) => Err(err),
        };
        let shown = path.display().to_string();
        summary.files.push(match outcome {
            Ok(added) => {
                summary.ingested += 1;
                summary.chunks += added.record.chunks;
                IngestedFile {
                    path: shown,
                    id: Some(added.record.id.to_string()),
                    status: "ready",
                    chunks: added.record.chunks,
                    error: None,
                }
            }
            Err(err) => {
                summary.failed += 1;
                IngestedFile {
                    path: shown,
                    id: None,
                    status: "failed",
                    chunks: 0,
                    error: Some(err.to_string()),
                }
            }
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let failed = summary.failed;
    output.emit(&summary, || {
        Table::new(vec!["FILE", "STATUS", "CHUNKS", "ID / ERROR"])
            .rows(summary.files.iter().map(|file| {
                vec![
                    file.path.clone(),
                    file.status.to_owned(),
                    file.chunks.to_string(),
                    or_dash(file.id.clone().or_else(|| file.error.clone())),
                ]
            }))
            .footer(format!(
                "{} ingested ({} chunks), {} failed",
                summary.ingested, summary.chunks, summary.failed
            ))
    })?;
    if failed > 0 {
        bail!("{failed} file(s) could not be ingested (see the list above)");
    }
    Ok(())
}

#[derive(Serialize)]
struct Hit {
    document_id: String,
    document_name: String,
    chunk_id: String,
    score: f32,
    text: String,
}

async fn search(
    keyward: &Keyward,
    output: &Output,
    tenant: &str,
    kb: &str,
    top_k: usize,
    query: String,
) -> anyhow::Result<()> {
    let scope = scope_of(keyward, tenant).await?;
    let access = keyward.knowledge_access_for_scope(&scope);
    let found = keyward
        .search_knowledge(&access, kb, BodyText::new(query), top_k)
        .await?;
    // The operator asked for the text: this is where it is shown.
    let hits: Vec<Hit> = found
        .iter()
        .map(|hit| Hit {
            document_id: hit.document_id.to_string(),
            document_name: hit.document_name.expose().to_owned(),
            chunk_id: hit.chunk_id.to_string(),
            score: hit.score,
            text: hit.text.expose().to_owned(),
        })
        .collect();
    output.emit(&super::list(hits), || {
        Table::new(vec!["SCORE", "DOCUMENT", "TEXT"]).rows(found.iter().map(|hit| {
            vec![
                format!("{:.3}", hit.score),
                hit.document_name.expose().to_owned(),
                hit.text
                    .expose()
                    .replace('\n', " ")
                    .chars()
                    .take(100)
                    .collect(),
            ]
        }))
    })
}
