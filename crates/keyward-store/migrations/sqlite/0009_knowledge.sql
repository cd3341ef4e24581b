-- Knowledge bases (SPEC "Knowledge bases (retrieval)"). Names of documents, their metadata and
-- every chunk's text are sealed by the vault (sealed_blob + sealed_key_version, like a
-- credential's secret); the database holds ciphertext, vectors and counts only.
CREATE TABLE knowledge_bases (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    department_id TEXT NOT NULL,
    name TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    embedding_model TEXT NOT NULL,
    chunk_tokens BIGINT NOT NULL,
    chunk_overlap BIGINT NOT NULL,
    -- Fixed by the first embedding the provider returns.
    dimensions BIGINT,
    -- Bumped whenever the searchable set changes, so every process knows its index is stale.
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

-- One row per document; a deleted document stays as a tombstone without its sealed name (the
-- platform meter counts documents stored per day).
CREATE TABLE kb_documents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kb_id TEXT NOT NULL,
    sealed_blob TEXT,
    sealed_key_version BIGINT,
    content_type TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    chunks BIGINT NOT NULL,
    embedded BIGINT NOT NULL,
    -- ingesting | ready | failed | deleted
    status TEXT NOT NULL,
    error TEXT,
    -- The process ingesting it; a document whose process is gone ends failed.
    instance_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX kb_documents_by_kb ON kb_documents (kb_id, id);
CREATE INDEX kb_documents_by_tenant ON kb_documents (tenant_id, created_at);
CREATE INDEX kb_documents_sealed ON kb_documents (sealed_key_version);

-- Chunks exist only for ready documents: they are written with the document's ready status
-- in one transaction, and deleted with it.
CREATE TABLE kb_chunks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kb_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    sealed_blob TEXT NOT NULL,
    sealed_key_version BIGINT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX kb_chunks_by_kb ON kb_chunks (kb_id, id);
CREATE INDEX kb_chunks_by_document ON kb_chunks (document_id);
CREATE INDEX kb_chunks_sealed ON kb_chunks (sealed_key_version);

-- The platform meter's retrievals: one per knowledge base searched, per tenant per UTC day.
CREATE TABLE kb_retrievals (
    tenant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    retrievals BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day)
);
