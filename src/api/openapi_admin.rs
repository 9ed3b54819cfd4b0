//! The OpenAPI description of `/api/admin/jobs…` and `/api/admin/backups…`: their paths and
//! the schemas of runs, job statuses, backup health and listed backups.

use serde_json::{Map, Value, json};

use super::openapi::{json_response, problem_responses};

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn responses(codes: &[&str], ok: &str, answer: Value) -> Map<String, Value> {
    let mut r = problem_responses(codes);
    r.insert(ok.into(), answer);
    r
}

/// 202 with the run's id and a `Location` to follow it at.
fn started() -> Value {
    json!({
        "description": "Started; follow the run at Location",
        "headers": { "Location": { "schema": { "type": "string" },
                                   "description": "/api/admin/jobs/runs/{run_id}" } },
        "content": { "application/json": { "schema": schema("JobStarted") } }
    })
}

fn from_parameter() -> Value {
    json!({ "name": "from", "in": "query", "schema": { "type": "string", "enum": ["local", "s3"] },
            "description": "only this backup target (default: every configured one)" })
}

fn schemas(out: &mut Map<String, Value>) {
    let text_or_null = json!({ "type": ["string", "null"] });
    out.insert(
        "JobRun".into(),
        json!({
            "type": "object",
            "properties": {
                "id": { "type": "integer" },
                "job": { "type": "string", "enum": ["backup", "prune", "optimize"] },
                "trigger": { "type": "string", "enum": ["schedule", "manual", "cli", "retry"] },
                "attempt": { "type": "integer" },
                "started": { "type": "string", "format": "date-time" },
                "finished": { "type": ["string", "null"], "format": "date-time" },
                "status": { "type": "string", "enum": ["running", "ok", "failed"] },
                "detail": text_or_null
            },
            "required": ["id", "job", "trigger", "attempt", "started", "finished", "status", "detail"]
        }),
    );
    let run_or_null = json!({ "oneOf": [ schema("JobRun"), { "type": "null" } ] });
    out.insert(
        "JobStatus".into(),
        json!({
            "type": "object",
            "properties": {
                "name": { "type": "string", "enum": ["backup", "prune", "optimize"] },
                "schedule": { "type": "string", "description": "6-field cron (UTC), or off" },
                "running": { "type": "boolean" },
                "last_run": run_or_null,
                "last_success": run_or_null
            },
            "required": ["name", "schedule", "running", "last_run", "last_success"]
        }),
    );
    out.insert(
        "BackupHealth".into(),
        json!({
            "type": "object",
            "properties": {
                "last_success": { "type": ["string", "null"], "format": "date-time" },
                "hours_since": { "type": ["number", "null"] },
                "warning": { "type": ["string", "null"],
                             "description": "set when the last success is older than backup.alert_after_hours" }
            },
            "required": ["last_success", "hours_since", "warning"]
        }),
    );
    out.insert(
        "Backup".into(),
        json!({
            "type": "object",
            "properties": {
                "id": { "type": "string", "examples": ["20260102T030405Z-3f9a"] },
                "target": { "type": "string", "enum": ["local", "s3"] },
                "created": { "type": "string", "format": "date-time" },
                "age_hours": { "type": "number" },
                "db_bytes": { "type": "integer", "description": "the database, before compression" },
                "file_bytes": { "type": "integer", "description": "the stored artifact" },
                "encrypted": { "type": "boolean" },
                "change_seq": { "type": "integer" },
                "schema_version": { "type": "integer" },
                "app_version": { "type": "string" }
            },
            "required": ["id", "target", "created", "age_hours", "db_bytes", "file_bytes",
                         "encrypted", "change_seq", "schema_version", "app_version"]
        }),
    );
    out.insert(
        "JobStarted".into(),
        json!({
            "type": "object",
            "properties": {
                "run_id": { "type": "integer" },
                "job": { "type": "string", "enum": ["backup", "prune", "optimize"] }
            },
            "required": ["run_id", "job"]
        }),
    );
}

/// Add the admin job and backup paths, and the schemas they use.
pub(super) fn admin_paths(paths: &mut Map<String, Value>, components: &mut Map<String, Value>) {
    schemas(components);
    let tags = json!(["admin"]);
    paths.insert(
        "/api/admin/jobs".into(),
        json!({ "get": {
            "operationId": "list_jobs",
            "summary": "Each job's schedule and latest runs, the 50 newest runs, and backup health",
            "tags": tags,
            "responses": responses(&["401", "403"], "200", json_response("Jobs", json!({
                "type": "object",
                "properties": {
                    "jobs": { "type": "array", "items": schema("JobStatus") },
                    "runs": { "type": "array", "items": schema("JobRun") },
                    "backup": schema("BackupHealth")
                },
                "required": ["jobs", "runs", "backup"]
            })))
        } }),
    );
    paths.insert(
        "/api/admin/jobs/{name}/run".into(),
        json!({
            "parameters": [ { "name": "name", "in": "path", "required": true,
                              "schema": { "type": "string", "enum": ["backup", "prune", "optimize"] } } ],
            "post": {
                "operationId": "run_job",
                "summary": "Start a job now (409 while it is running)",
                "tags": tags,
                "responses": responses(&["401", "403", "404", "409"], "202", started())
            }
        }),
    );
    paths.insert(
        "/api/admin/jobs/runs/{id}".into(),
        json!({
            "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } } ],
            "get": {
                "operationId": "get_job_run",
                "summary": "One job run",
                "tags": tags,
                "responses": responses(&["401", "403", "404"], "200",
                    json_response("The run", schema("JobRun")))
            }
        }),
    );
    paths.insert(
        "/api/admin/backups".into(),
        json!({
            "get": {
                "operationId": "list_backups",
                "summary": "Stored backups, newest first (503 when a target cannot be listed)",
                "tags": tags,
                "parameters": [ from_parameter() ],
                "responses": responses(&["400", "401", "403", "503"], "200", json_response("Backups", json!({
                    "type": "object",
                    "properties": {
                        "items": { "type": "array", "items": schema("Backup") },
                        "backup": schema("BackupHealth")
                    },
                    "required": ["items", "backup"]
                })))
            },
            "post": {
                "operationId": "create_backup",
                "summary": "Take a backup now: starts the backup job (409 while it is running)",
                "tags": tags,
                "responses": responses(&["401", "403", "409"], "202", started())
            }
        }),
    );
    paths.insert(
        "/api/admin/backups/{id}/download".into(),
        json!({
            "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ],
            "get": {
                "operationId": "download_backup",
                "summary": "The stored artifact (zstd, age-encrypted when the backup is), streamed",
                "tags": tags,
                "parameters": [ from_parameter() ],
                "responses": responses(&["400", "401", "403", "404", "503"], "200", json!({
                    "description": "The artifact, as an attachment",
                    "headers": {
                        "Content-Disposition": { "schema": { "type": "string" } },
                        "Content-Length": { "schema": { "type": "integer" } }
                    },
                    "content": { "application/octet-stream": {
                        "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } }
                }))
            }
        }),
    );
}
