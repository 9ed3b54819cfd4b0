//! `GET /api/openapi.json`: an OpenAPI 3.1 document generated from the live collections — a
//! schema per collection (the record as answered and the body as accepted), the list
//! parameters, and the problem+json error shape.

use rocket::State;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::AppError;
use crate::schema::{Collection, Field, FieldKind};

use super::reply::Reply;

#[rocket::get("/openapi.json")]
pub fn openapi_json(app: &State<App>) -> Result<Reply, AppError> {
    Reply::ok(&document(&app.collections.list()))
}

fn field_schema(f: &Field) -> Value {
    let mut s = match &f.kind {
        FieldKind::Text { min, max, pattern } => {
            let mut s = json!({ "type": "string" });
            if let Some(m) = min {
                s["minLength"] = json!(m);
            }
            if let Some(m) = max {
                s["maxLength"] = json!(m);
            }
            if let Some(p) = pattern {
                s["pattern"] = json!(p.source);
            }
            s
        }
        FieldKind::Number { min, max, integer } => {
            let mut s = json!({ "type": if *integer { "integer" } else { "number" } });
            if let Some(m) = min {
                s["minimum"] = json!(m);
            }
            if let Some(m) = max {
                s["maximum"] = json!(m);
            }
            s
        }
        FieldKind::Bool => json!({ "type": "boolean" }),
        FieldKind::Datetime => json!({ "type": "string", "format": "date-time" }),
        FieldKind::Email => json!({ "type": "string", "format": "email" }),
        FieldKind::Url => json!({ "type": "string", "format": "uri" }),
        FieldKind::Select { values, multiple } => {
            if *multiple {
                json!({ "type": "array", "items": { "enum": values }, "uniqueItems": true })
            } else {
                json!({ "type": "string", "enum": values })
            }
        }
        FieldKind::Json => json!({}),
        FieldKind::Relation { collection, .. } => json!({
            "type": "string",
            "description": format!("id of a {collection} record"),
        }),
    };
    if !f.required
        && let Some(obj) = s.as_object_mut()
    {
        // Optional fields may be null.
        match obj.get("type").cloned() {
            Some(Value::String(t)) => {
                obj.insert("type".into(), json!([t, "null"]));
            }
            Some(_) => {}
            None if obj.contains_key("enum") => {}
            None => {}
        }
    }
    if let Some(d) = &f.default {
        s["default"] = d.clone();
    }
    s
}

fn record_schemas(c: &Collection) -> (Value, Value) {
    let mut props = Map::new();
    props.insert("id".into(), json!({ "type": "string", "readOnly": true }));
    for sys in ["created", "updated"] {
        props.insert(
            sys.into(),
            json!({ "type": "string", "format": "date-time", "readOnly": true }),
        );
    }
    let mut input_props = Map::new();
    let mut required_in = Vec::new();
    for f in &c.fields {
        let s = field_schema(f);
        props.insert(f.name.clone(), s.clone());
        input_props.insert(f.name.clone(), s);
        if f.required && f.default.is_none() {
            required_in.push(f.name.clone());
        }
    }
    let mut all_names: Vec<String> = vec!["id".into(), "created".into(), "updated".into()];
    all_names.extend(c.fields.iter().map(|f| f.name.clone()));
    let record = json!({
        "type": "object",
        "properties": props,
        "required": all_names,
    });
    let input = json!({
        "type": "object",
        "properties": input_props,
        "required": required_in,
        "additionalProperties": false,
    });
    (record, input)
}

pub(super) fn problem_responses(codes: &[&str]) -> Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            (
                c.to_string(),
                json!({ "$ref": format!("#/components/responses/{}", problem_name(c)) }),
            )
        })
        .collect()
}

fn problem_name(code: &str) -> &'static str {
    match code {
        "400" => "BadRequest",
        "401" => "Unauthorized",
        "403" => "Forbidden",
        "404" => "NotFound",
        "409" => "Conflict",
        "412" => "PreconditionFailed",
        "413" => "PayloadTooLarge",
        "415" => "UnsupportedMediaType",
        "422" => "ValidationFailed",
        "429" => "TooManyRequests",
        "503" => "ServiceUnavailable",
        _ => "Problem",
    }
}

fn json_body(schema_ref: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": { "$ref": schema_ref } } } })
}

pub(super) fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn collection_paths(c: &Collection, paths: &mut Map<String, Value>) {
    let name = &c.name;
    let rec = format!("#/components/schemas/{name}");
    let input = format!("#/components/schemas/{name}_input");
    let mut list_responses = problem_responses(&["400", "401", "403", "404"]);
    list_responses.insert(
        "200".into(),
        json_response(
            "A page of records",
            json!({
                "type": "object",
                "properties": {
                    "items": { "type": "array", "items": { "$ref": rec } },
                    "next": { "type": ["string", "null"], "description": "cursor for the next page" },
                    "prev": { "type": ["string", "null"], "description": "cursor for the previous page (as before=); null on the first page" },
                    "total": { "type": "integer", "description": "only with count=true" }
                },
                "required": ["items", "next", "prev"]
            }),
        ),
    );
    list_responses.insert("304".into(), json!({ "description": "Not modified" }));
    let mut create_responses =
        problem_responses(&["400", "401", "403", "404", "409", "413", "415", "422"]);
    create_responses.insert(
        "201".into(),
        json_response("Created", json!({ "$ref": rec })),
    );
    paths.insert(
        format!("/api/collections/{name}/records"),
        json!({
            "get": {
                "operationId": format!("list_{name}"),
                "tags": [name],
                "parameters": [
                    { "$ref": "#/components/parameters/filter" },
                    { "$ref": "#/components/parameters/sort" },
                    { "$ref": "#/components/parameters/limit" },
                    { "$ref": "#/components/parameters/after" },
                    { "$ref": "#/components/parameters/before" },
                    { "$ref": "#/components/parameters/page" },
                    { "$ref": "#/components/parameters/count" },
                    { "$ref": "#/components/parameters/fields" }
                ],
                "responses": list_responses
            },
            "post": {
                "operationId": format!("create_{name}"),
                "tags": [name],
                "requestBody": json_body(&input),
                "responses": create_responses
            }
        }),
    );
    let mut get_responses = problem_responses(&["400", "401", "404"]);
    get_responses.insert(
        "200".into(),
        json_response("The record", json!({ "$ref": rec })),
    );
    get_responses.insert("304".into(), json!({ "description": "Not modified" }));
    let mut patch_responses = problem_responses(&[
        "400", "401", "403", "404", "409", "412", "413", "415", "422",
    ]);
    patch_responses.insert(
        "200".into(),
        json_response("The updated record", json!({ "$ref": rec })),
    );
    let mut delete_responses = problem_responses(&["401", "404", "409", "412"]);
    delete_responses.insert("204".into(), json!({ "description": "Deleted" }));
    paths.insert(
        format!("/api/collections/{name}/records/{{id}}"),
        json!({
            "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ],
            "get": {
                "operationId": format!("get_{name}"),
                "tags": [name],
                "parameters": [ { "$ref": "#/components/parameters/fields" } ],
                "responses": get_responses
            },
            "patch": {
                "operationId": format!("update_{name}"),
                "tags": [name],
                "parameters": [ { "$ref": "#/components/parameters/if_match" } ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "$ref": format!("#/components/schemas/{name}_patch") } } } },
                "responses": patch_responses
            },
            "delete": {
                "operationId": format!("delete_{name}"),
                "tags": [name],
                "parameters": [ { "$ref": "#/components/parameters/if_match" } ],
                "responses": delete_responses
            }
        }),
    );
}

fn static_paths(paths: &mut Map<String, Value>) {
    let any_object = json!({ "type": "object" });
    let simple = |op: &str, summary: &str, codes: &[&str], ok: &str| {
        let mut r = problem_responses(codes);
        r.insert(
            ok.into(),
            json_response(summary, json!({ "type": "object" })),
        );
        json!({ "operationId": op, "summary": summary, "tags": ["system"], "responses": r })
    };
    let with_body = |mut op: Value| {
        op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": any_object.clone() } } });
        op
    };
    paths.insert(
        "/api/collections".into(),
        json!({
            "get": simple("list_collections", "Collection definitions", &["401", "403"], "200"),
            "post": with_body(simple("create_collection", "Create a collection", &["400", "401", "403", "409", "422"], "201")),
        }),
    );
    paths.insert(
        "/api/collections/{name}".into(),
        json!({
            "parameters": [ { "name": "name", "in": "path", "required": true, "schema": { "type": "string" } } ],
            "get": simple("get_collection", "A collection definition", &["401", "403", "404"], "200"),
            "patch": with_body(simple("update_collection", "Alter a collection (JSON merge patch)", &["400", "401", "403", "404", "409", "422"], "200")),
            "delete": simple("delete_collection", "Drop a collection", &["401", "403", "404", "409"], "204"),
        }),
    );
    let mut login = simple(
        "login",
        "Exchange email and password (and, for users with TOTP, a code) for a token",
        &["400", "401", "422", "429"],
        "200",
    );
    login["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object",
        "required": ["email", "password"],
        "additionalProperties": false,
        "properties": {
            "email": { "type": "string" },
            "password": { "type": "string" },
            "code": {
                "type": "string",
                "description": "Required when the user has two-factor sign-in: a current TOTP code or an unused recovery code; missing or wrong is a 401"
            }
        }
    } } } });
    paths.insert("/api/auth/login".into(), json!({ "post": login }));
    paths.insert(
        "/api/auth/logout".into(),
        json!({ "post": simple("logout", "Revoke the token in use", &["401"], "204") }),
    );
    paths.insert(
        "/api/auth/me".into(),
        json!({ "get": simple("me", "The signed-in user", &["401"], "200") }),
    );
    paths.insert(
        "/api/users".into(),
        json!({
            "get": simple("list_users", "Users", &["401", "403"], "200"),
            "post": with_body(simple("create_user", "Create a user", &["400", "401", "403", "409", "422"], "201")),
        }),
    );
    paths.insert(
        "/api/users/{id}".into(),
        json!({
            "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ],
            "get": simple("get_user", "A user", &["401", "403", "404"], "200"),
            "patch": with_body(simple("update_user", "Change a user", &["400", "401", "403", "404", "409", "422"], "200")),
            "delete": simple("delete_user", "Delete a user", &["401", "403", "404", "409"], "204"),
        }),
    );
    paths.insert(
        "/api/tokens".into(),
        json!({
            "get": simple("list_tokens", "Your API tokens", &["401"], "200"),
            "post": with_body(simple("create_token", "Create an API token (shown once)", &["400", "401", "422"], "201")),
        }),
    );
    paths.insert(
        "/api/tokens/{id}".into(),
        json!({
            "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } } ],
            "delete": simple("delete_token", "Revoke an API token", &["401", "404"], "204"),
        }),
    );
}

/// The whole document for the given collections.
pub fn document(collections: &[std::sync::Arc<Collection>]) -> Value {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    static_paths(&mut paths);
    super::openapi_admin::admin_paths(&mut paths, &mut schemas);
    for c in collections {
        let (record, input) = record_schemas(c);
        let mut patch = input.clone();
        patch["required"] = json!([]);
        schemas.insert(c.name.clone(), record);
        schemas.insert(format!("{}_input", c.name), input);
        schemas.insert(format!("{}_patch", c.name), patch);
        collection_paths(c, &mut paths);
    }
    schemas.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "description": "RFC 9457 problem details",
            "properties": {
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "errors": { "type": "object", "additionalProperties": { "type": "string" },
                            "description": "per-field messages (422), every failing field at once" },
                "position": { "type": "integer", "description": "offset of a filter/sort error" },
                "parameter": { "type": "string" },
                "request_id": { "type": "string" }
            },
            "required": ["type", "title", "status", "detail"]
        }),
    );
    let mut responses = Map::new();
    for code in [
        "400", "401", "403", "404", "409", "412", "413", "415", "422", "429", "503",
    ] {
        responses.insert(
            problem_name(code).into(),
            json!({
                "description": problem_name(code),
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
            }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "onebox",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Generated from the live collections."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "parameters": {
                "filter": { "name": "filter", "in": "query", "schema": { "type": "string", "maxLength": 4096 },
                            "description": "e.g. title ~ \"rust\" && (year >= 2020 || featured = true)" },
                "sort": { "name": "sort", "in": "query", "schema": { "type": "string" },
                          "description": "comma-separated fields, - for descending; id breaks ties" },
                "limit": { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
                "after": { "name": "after", "in": "query", "schema": { "type": "string" },
                           "description": "opaque cursor from a previous page's next" },
                "before": { "name": "before", "in": "query", "schema": { "type": "string" },
                            "description": "opaque cursor from a page's prev: the page before it" },
                "page": { "name": "page", "in": "query", "schema": { "type": "integer", "minimum": 1 } },
                "count": { "name": "count", "in": "query", "schema": { "type": "boolean" } },
                "fields": { "name": "fields", "in": "query", "schema": { "type": "string" },
                            "description": "comma-separated fields to return" },
                "if_match": { "name": "If-Match", "in": "header", "schema": { "type": "string" } }
            },
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "obx_ API or login token" }
            }
        },
        "security": [ { "bearer": [] }, {} ]
    })
}
