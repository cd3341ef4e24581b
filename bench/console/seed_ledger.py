"""Seeds a tenant's ledger with N settled calls spread over the current UTC month, straight into
a stopped or running Keyward's SQLite database (WAL), for the console's page-time benchmark.

usage: seed_ledger.py DB_PATH TENANT_ID CREDENTIAL_ID KEY_ID ROWS
"""

import calendar
import json
import random
import sqlite3
import sys
import time
import uuid


def uuid7(millis):
    """A UUIDv7 string for `millis`, so request ids sort by time as Keyward's do."""
    rand = random.getrandbits(74)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def main():
    db_path, tenant, credential, key, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    now = int(time.time() * 1000)
    today = time.gmtime(now / 1000)
    month_start = calendar.timegm((today.tm_year, today.tm_mon, 1, 0, 0, 0)) * 1000
    span = max(1, now - month_start - 1000)
    models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini"]
    statuses = ["ok"] * 97 + ["provider_error", "client_cancelled", "timeout"]
    db = sqlite3.connect(db_path, timeout=60)
    db.execute("PRAGMA synchronous = OFF")
    batch = []
    for index in range(rows):
        created = month_start + (index * span) // rows
        model = models[index % len(models)]
        input_tokens, output_tokens = 200 + index % 700, 50 + index % 300
        batch.append((uuid7(created), created, tenant, key, None, credential, "team-openai", "openai",
                      "/v1/chat/completions", model, model, f"req_{index}", statuses[index % len(statuses)], 200, 0,
                      input_tokens, 0, 0, output_tokens, 0, input_tokens * 15 // 100 + output_tokens * 60 // 100,
                      "openai/gpt-4o-mini/2024-07-18", 120, None, json.dumps({"team": f"t{index % 5}"}), None, created + 120))
        if len(batch) == 50_000:
            insert(db, batch)
            batch.clear()
    insert(db, batch)
    db.close()


def insert(db, batch):
    db.executemany(
        "INSERT INTO ledger (request_id, created_at, tenant_id, key_id, department_id, credential_id, credential_label,"
        " provider, endpoint, model_requested, model_reported, provider_request_id, status, http_status, stream,"
        " input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_micro_usd,"
        " price_id, latency_ms, ttfb_ms, tags, fallback_of, settled_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
    db.commit()


if __name__ == "__main__":
    main()
