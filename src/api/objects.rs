//! Object verbs: get, list, create, update (PUT), patch, delete, deletecollection, and the
//! `status` subresource; create-only review kinds are answered here without being stored.
//!
//! Writes are prepared here (defaults that need no state: uid, creationTimestamp,
//! generation; validation) and decided by the store when the Raft entry is applied
//! (exists, stale resourceVersion, missing namespace). Updates computed from a read retry on
//! a conflict unless the client named the resourceVersion it expects.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::error::{ApiError, Cause, Target};
use super::request::{Query, ResourcePath, Wanted};
use super::selector::{self, FieldSelector, LabelSelector};
use super::{
    ApiState, Caller, apply, body, bytes_response, deletion, json_response, scale, table, watch,
};
use crate::raft::RaftNodeError;
use crate::resources::validation;
use crate::resources::{ResourceDef, crd, defaults, schema};
use crate::store::{ApplyError, Command, CommandResult, Key, Precondition, StoredObject};

const CONFLICT_MESSAGE: &str =
    "the object has been modified; please apply your changes to the latest version and try again";
/// Attempts of a read-modify-write before giving up on a busy object.
const UPDATE_ATTEMPTS: usize = 8;
/// Re-allocations of a Service address that another Service took meanwhile.
const ALLOCATION_RETRIES: usize = 256;

/// Dispatches a resource path.
pub async fn handle(
    app: &Arc<ApiState>,
    caller: &Caller,
    req: Request,
    path: ResourcePath,
    query: Query,
    wanted: Wanted,
) -> Result<Response, ApiError> {
    let def = app
        .registry
        .lookup(&path.group, &path.version, &path.plural)
        .ok_or(ApiError::NoSuchPath)?;
    if def.namespaced && path.namespace.is_none() && path.name.is_some() {
        return Err(ApiError::NoSuchPath);
    }
    if !def.namespaced && path.namespace.is_some() {
        return Err(ApiError::NoSuchPath);
    }
    // A proxied request's Accept is the backend's business.
    let proxied = path
        .subresource
        .as_deref()
        .is_some_and(|s| s == "proxy" || s.starts_with("proxy/"));
    if matches!(wanted, Wanted::Unsupported) && !proxied {
        return Err(ApiError::NotAcceptable(
            "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io".into(),
        ));
    }
    let ns = path.namespace.clone().unwrap_or_default();
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let verb_ok = |verb: &str| {
        if def.allows(verb) {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    };
    let manager = match query.get("fieldManager") {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => apply::default_manager(
            req.headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        ),
    };
    if manager.len() > 128 {
        return Err(ApiError::Invalid {
            kind: "PatchOptions".into(),
            group: "meta.k8s.io".into(),
            name: String::new(),
            message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes".into(),
            causes: vec![],
        });
    }
    let ctx = Ctx {
        app,
        def: def.clone(),
        namespace: ns,
        query: &query,
        wanted,
        identity: caller.identity.clone(),
        manager,
    };
    // A deprecated CRD version warns on every request, as kube-apiserver does.
    let deprecation: Vec<String> = def
        .custom
        .as_ref()
        .filter(|c| c.version.deprecated)
        .map(|c| {
            c.version
                .deprecation_warning
                .clone()
                .unwrap_or_else(|| format!("{} {} is deprecated", def.api_version(), def.kind))
        })
        .into_iter()
        .collect();
    let result = match (&method, path.name.as_deref(), path.subresource.as_deref()) {
        (&Method::GET, None, None) => {
            if path.legacy_watch || query.flag("watch") {
                verb_ok("watch")?;
                watch::serve(&ctx, path.namespace.as_deref()).await
            } else {
                verb_ok("list")?;
                list(&ctx, path.namespace.as_deref()).await
            }
        }
        (&Method::POST, None, None) => {
            verb_ok("create")?;
            if def.namespaced && path.namespace.is_none() {
                return Err(ApiError::NoSuchPath);
            }
            let bytes = body::read(req.into_body()).await?;
            let obj = body::decode_object(content_type.as_deref(), &bytes)?;
            if def.virtual_only {
                return review(&ctx, caller, obj);
            }
            create(&ctx, obj).await
        }
        (&Method::DELETE, None, None) => {
            verb_ok("deletecollection")?;
            let bytes = body::read(req.into_body()).await?;
            delete_collection(&ctx, content_type.as_deref(), &bytes).await
        }
        (
            &Method::GET,
            Some(name),
            sub @ (None | Some("status" | "resize" | "ephemeralcontainers")),
        ) => {
            if !subresource_served(ctx.app, &def, sub) {
                return Err(ApiError::NoSuchPath);
            }
            verb_ok("get")?;
            get(&ctx, name).await
        }
        (
            &Method::PUT,
            Some(name),
            sub @ (None | Some("status" | "resize" | "ephemeralcontainers")),
        ) => {
            if !subresource_served(ctx.app, &def, sub) {
                return Err(ApiError::NoSuchPath);
            }
            verb_ok("update")?;
            let bytes = body::read(req.into_body()).await?;
            let obj = body::decode_object(content_type.as_deref(), &bytes)?;
            update(&ctx, name, sub, obj).await
        }
        (
            &Method::PATCH,
            Some(name),
            sub @ (None | Some("status" | "resize" | "ephemeralcontainers")),
        ) => {
            if !subresource_served(ctx.app, &def, sub) {
                return Err(ApiError::NoSuchPath);
            }
            verb_ok("patch")?;
            let bytes = body::read(req.into_body()).await?;
            patch(&ctx, name, sub, content_type.as_deref(), &bytes).await
        }
        (&Method::DELETE, Some(name), None) => {
            verb_ok("delete")?;
            let bytes = body::read(req.into_body()).await?;
            delete(&ctx, name, content_type.as_deref(), &bytes).await
        }
        (&Method::GET, Some(name), Some("scale")) if def.has_scale => {
            verb_ok("get")?;
            ensure_fresh(&ctx).await?;
            let stored = ctx
                .app
                .store
                .get(&def.storage_resource(), &ctx.namespace, name)
                .ok_or_else(|| ApiError::NotFound(ctx.target(name)))?;
            Ok(json_response(
                StatusCode::OK,
                &scale_view(&def, &stored.value())?,
            ))
        }
        (&Method::PUT | &Method::PATCH, Some(name), Some("scale")) if def.has_scale => {
            verb_ok(if method == Method::PUT {
                "update"
            } else {
                "patch"
            })?;
            let bytes = body::read(req.into_body()).await?;
            let put = method == Method::PUT;
            update_scale(&ctx, name, put, content_type.as_deref(), &bytes).await
        }
        (&Method::PUT, Some(name), Some("finalize"))
            if def.group.is_empty() && def.plural == "namespaces" =>
        {
            verb_ok("update")?;
            let bytes = body::read(req.into_body()).await?;
            let obj = body::decode_object(content_type.as_deref(), &bytes)?;
            finalize_namespace(&ctx, name, obj).await?.respond(&ctx)
        }
        (&Method::POST, Some(name), Some("binding"))
            if def.group.is_empty() && def.plural == "pods" =>
        {
            let bytes = body::read(req.into_body()).await?;
            let binding = body::decode_object(content_type.as_deref(), &bytes)?;
            bind(&ctx, name, &binding).await
        }
        (&Method::POST, Some(name), Some("eviction"))
            if def.group.is_empty() && def.plural == "pods" =>
        {
            let bytes = body::read(req.into_body()).await?;
            let eviction = body::decode_object(content_type.as_deref(), &bytes)?;
            evict(&ctx, name, &eviction).await
        }
        (&Method::POST, Some(name), Some("token"))
            if def.kind == "ServiceAccount" && def.group.is_empty() =>
        {
            let bytes = body::read(req.into_body()).await?;
            let request = body::decode_object(content_type.as_deref(), &bytes)?;
            let out = app.service_account_tokens.token_request(
                &app.store,
                &ctx.namespace,
                name,
                &request,
            )?;
            Ok(json_response(StatusCode::CREATED, &out))
        }
        (_, Some(name), Some(sub @ ("exec" | "attach" | "portforward")))
            if def.kind == "Pod" && def.group.is_empty() =>
        {
            let sub = sub.to_string();
            super::streaming::pod_stream(&ctx, name, &sub, req).await
        }
        (_, Some(name), Some(sub))
            if (sub == "proxy" || sub.starts_with("proxy/"))
                && def.group.is_empty()
                && def.kind == "Pod" =>
        {
            super::proxy::pod_proxy(&ctx, name, req).await
        }
        (_, Some(name), Some(sub))
            if (sub == "proxy" || sub.starts_with("proxy/"))
                && def.group.is_empty()
                && def.kind == "Service" =>
        {
            super::proxy::service_proxy(&ctx, name, req).await
        }
        (&Method::GET, Some(name), Some("log")) if def.kind == "Pod" && def.group.is_empty() => {
            pod_log(&ctx, name).await
        }
        (_, Some(_), Some(_)) => Err(ApiError::NoSuchPath),
        _ => Err(ApiError::MethodNotAllowed),
    };
    result.map(|r| with_warnings(r, &deprecation))
}

/// One request's view of the resource it addresses.
pub struct Ctx<'a> {
    /// Shared state.
    pub app: &'a Arc<ApiState>,
    /// The kind.
    pub def: Arc<ResourceDef>,
    /// The namespace ("" for cluster-scoped kinds and all-namespace lists).
    pub namespace: String,
    /// Query options.
    pub query: &'a Query,
    /// Response form.
    pub wanted: Wanted,
    /// Who asks (None: the daemon itself).
    pub identity: Option<super::auth::Identity>,
    /// The field manager writes are recorded under in managedFields.
    pub manager: String,
}

impl Ctx<'_> {
    fn key(&self, name: &str) -> Key {
        Key {
            resource: self.def.storage_resource(),
            namespace: self.namespace.clone(),
            name: name.to_string(),
        }
    }

    fn target(&self, name: &str) -> Target {
        Target {
            group: self.def.group.clone(),
            resource: self.def.plural.clone(),
            name: name.to_string(),
        }
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.query.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "Invalid dry run value \"{other}\": valid values are \"All\""
            ))),
        }
    }

    /// Maps a Raft failure to what a client should see.
    fn raft_error(&self, e: RaftNodeError) -> ApiError {
        match e {
            RaftNodeError::Timeout(_) => ApiError::Timeout(
                "Timeout: request did not complete within the allowed duration".into(),
            ),
            RaftNodeError::NotLeader { .. } => {
                ApiError::Unavailable("the storage leader is unavailable; retry shortly".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }

    async fn propose(&self, cmd: Command) -> Result<CommandResult, ApiError> {
        self.app
            .raft
            .write(cmd)
            .await
            .map_err(|e| self.raft_error(e))
    }

    /// Proposes the create or update `cmd` of `value`, offering the store the value with its
    /// JSON, so that the version it stores starts out parsed (Events aside: little reads
    /// them back). The value comes back unless the write took it.
    async fn propose_value(
        &self,
        cmd: Command,
        value: Value,
    ) -> (Result<CommandResult, ApiError>, Option<Value>) {
        let offer = match &cmd {
            Command::Create { key, object } | Command::Update { key, object, .. }
                if !key.resource.starts_with("events") =>
            {
                Some((key.clone(), object.clone()))
            }
            _ => None,
        };
        let Some((key, json)) = offer else {
            return (self.propose(cmd).await, Some(value));
        };
        let offered = self.app.store.offer_parsed(&key, &json, value);
        let result = self.propose(cmd).await;
        (result, offered.withdraw())
    }

    fn apply_scope<'s>(&'s self, subresource: Option<&'s str>, now: &'s str) -> apply::Scope<'s> {
        apply::Scope {
            manager: &self.manager,
            subresource,
            status_subresource: self.def.has_status,
            now,
        }
    }

    /// The OpenAPI v3 schema of a kind without a built-in schema: its CRD's, or an open one.
    fn open_schema(&self) -> Value {
        self.def
            .custom
            .as_ref()
            .and_then(|c| c.version.schema.clone())
            .unwrap_or_else(
                || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            )
    }

    /// Records this write in `new`'s managedFields (operation Update).
    fn track(&self, old: Option<&Value>, new: &mut Value, subresource: Option<&str>) {
        let now = now_rfc3339();
        let scope = self.apply_scope(subresource, &now);
        match schema::message_for_kind(&self.def.group, &self.def.version, &self.def.kind) {
            Some(m) => apply::record_update(old, new, apply::BuiltinSchema::for_kind(m), &scope),
            None => {
                let open = self.open_schema();
                apply::record_update(old, new, apply::CrdSchema::new(&open), &scope)
            }
        }
    }

    /// Server-side apply of `applied` onto `live` under this request's manager.
    fn apply(
        &self,
        live: Option<&Value>,
        applied: &Value,
        force: bool,
        subresource: Option<&str>,
    ) -> Result<Value, ApiError> {
        let now = now_rfc3339();
        let scope = self.apply_scope(subresource, &now);
        let result =
            match schema::message_for_kind(&self.def.group, &self.def.version, &self.def.kind) {
                Some(m) => apply::apply(
                    live,
                    applied,
                    force,
                    apply::BuiltinSchema::for_kind(m),
                    &scope,
                ),
                None => {
                    let open = self.open_schema();
                    apply::apply(live, applied, force, apply::CrdSchema::new(&open), &scope)
                }
            };
        result.map_err(|e| {
            let code =
                StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = match e.status_code() {
                409 => "Conflict",
                400 => "BadRequest",
                _ => "InternalError",
            };
            let mut status = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": e.message(), "reason": reason, "code": e.status_code(),
            });
            let causes = e.causes();
            if !causes.is_empty() {
                status["details"] = json!({"causes": causes});
            }
            ApiError::Status(code, status)
        })
    }

    /// Waits until this node has applied every write committed before the call.
    pub(super) async fn read_barrier(&self) -> Result<(), ApiError> {
        self.app
            .raft
            .read_barrier()
            .await
            .map_err(|e| self.raft_error(e))
    }
}

// ---------------------------------------------------------------------------------------
// Reads

/// `resourceVersion` semantics for get and list: "" is a linearizable read, "0" any local
/// state, N at least N (504 after 3 s if the store has not reached it).
async fn ensure_fresh(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    match ctx.query.get("resourceVersion") {
        None | Some("") => ctx.read_barrier().await,
        Some("0") => Ok(()),
        Some(rv) => {
            let n = parse_rv(rv)?;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
            loop {
                let current = ctx.app.store.revision();
                if current >= n {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(ApiError::TooLargeResourceVersion {
                        requested: n,
                        current,
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

fn parse_rv(rv: &str) -> Result<u64, ApiError> {
    rv.parse::<u64>()
        .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))
}

async fn get(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    ensure_fresh(ctx).await?;
    let obj = ctx
        .app
        .store
        .get(&ctx.def.storage_resource(), &ctx.namespace, name)
        .ok_or_else(|| ApiError::NotFound(ctx.target(name)))?;
    respond_object(ctx, StatusCode::OK, &obj.json)
}

/// `pods/<name>/log`.
async fn pod_log(ctx: &Ctx<'_>, name: &str) -> Result<Response, ApiError> {
    ensure_fresh(ctx).await?;
    let pod = ctx
        .app
        .store
        .get("pods", &ctx.namespace, name)
        .ok_or_else(|| ApiError::NotFound(ctx.target(name)))?
        .value();
    let opts = super::logs::options(&pod, ctx.query)?;
    if ctx.app.simulated {
        return Ok(super::logs::simulated(ctx.app, &pod, opts));
    }
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(physical) = ctx.app.syncers.for_node(node) {
        let id = ctx.app.syncers.vcluster_id();
        let pname = crate::syncer::translate::physical_name(name, &ctx.namespace, &id);
        let mut q = vec![("container", opts.container.clone())];
        for (k, on) in [("follow", opts.follow), ("timestamps", opts.timestamps)] {
            if on {
                q.push((k, "true".into()));
            }
        }
        if let Some(t) = opts.tail {
            q.push(("tailLines", t.to_string()));
        }
        let query = serde_urlencoded::to_string(&q).unwrap_or_default();
        return physical
            .pod_log(&pname, &query)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()));
    }
    Err(ApiError::BadRequest(format!(
        "pod {name} has no physical cluster serving its logs (no syncer runs for node {:?})",
        pod.pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
    )))
}

/// Writes one object in the form the client asked for.
fn respond_object(ctx: &Ctx<'_>, code: StatusCode, json: &[u8]) -> Result<Response, ApiError> {
    match ctx.wanted {
        Wanted::Json | Wanted::AggregatedDiscovery(_) | Wanted::Unsupported => Ok(bytes_response(
            code,
            ctx.def.served_json(json).into_owned(),
            "application/json",
        )),
        Wanted::Yaml => {
            let mut v: Value =
                serde_json::from_slice(json).map_err(|e| ApiError::Internal(e.to_string()))?;
            ctx.def.set_served_version(&mut v);
            let text =
                serde_saphyr::to_string(&v).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(bytes_response(code, text.into_bytes(), "application/yaml"))
        }
        Wanted::Table(version) => {
            let v: Value =
                serde_json::from_slice(json).map_err(|e| ApiError::Internal(e.to_string()))?;
            let t = table::build(
                &ctx.def,
                &[v],
                json!({}),
                version,
                table::include_object(ctx.query)?,
            );
            Ok(json_response(code, &t))
        }
        Wanted::PartialMetadata => {
            let v: Value =
                serde_json::from_slice(json).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(json_response(code, &table::partial_metadata(&v)))
        }
    }
}

/// Parsed label and field selectors of a list or watch.
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    group: String,
    resource: String,
}

impl Filter {
    /// From `labelSelector` and `fieldSelector`.
    pub fn parse(ctx: &Ctx<'_>) -> Result<Filter, ApiError> {
        let labels = match ctx.query.get("labelSelector") {
            Some(s) if !s.trim().is_empty() => Some(
                selector::parse_label_selector(s)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?,
            ),
            _ => None,
        };
        let fields = match ctx.query.get("fieldSelector") {
            Some(s) if !s.trim().is_empty() => {
                let fs = selector::parse_field_selector(s)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                selector::check_supported(&ctx.def.group, &ctx.def.plural, &fs)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                Some(fs)
            }
            _ => None,
        };
        Ok(Filter {
            labels,
            fields,
            group: ctx.def.group.clone(),
            resource: ctx.def.plural.clone(),
        })
    }

    /// Whether `obj` passes.
    pub fn matches(&self, obj: &StoredObject) -> bool {
        if let Some(sel) = &self.labels
            && !sel.matches(&obj.labels)
        {
            return false;
        }
        if let Some(fs) = &self.fields {
            return fs.matches(&self.group, &self.resource, &obj.value());
        }
        true
    }

    /// A `metadata.name=X` field selector (a point lookup).
    fn single_name(&self) -> Option<&str> {
        self.fields.as_ref()?.single_equality("metadata.name")
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine;
    let t = ContinueToken {
        rv,
        ns: ns.into(),
        name: name.into(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&t).unwrap_or_default())
}

fn decode_continue(s: &str) -> Result<ContinueToken, ApiError> {
    use base64::Engine;
    let bad = || {
        ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into())
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| bad())?;
    serde_json::from_slice(&raw).map_err(|_| bad())
}

async fn list(ctx: &Ctx<'_>, namespace: Option<&str>) -> Result<Response, ApiError> {
    let filter = Filter::parse(ctx)?;
    let limit: usize = match ctx.query.get("limit") {
        None | Some("") => 0,
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::BadRequest(format!("invalid limit: {l:?}")))?
            .max(0) as usize,
    };
    let token = match ctx.query.get("continue") {
        Some(c) if !c.is_empty() => Some(decode_continue(c)?),
        _ => None,
    };
    match (
        ctx.query.get("resourceVersionMatch"),
        ctx.query.get("resourceVersion"),
    ) {
        (Some("Exact"), Some(rv)) => {
            let n = parse_rv(rv)?;
            if n != ctx.app.store.revision() {
                return Err(ApiError::Expired(
                    "The resourceVersion for the provided list is too old.".to_string(),
                ));
            }
        }
        (Some("Exact" | "NotOlderThan"), None | Some("")) => {
            return Err(ApiError::BadRequest(
                "resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
            ));
        }
        (Some(m), _) if m != "Exact" && m != "NotOlderThan" && !m.is_empty() => {
            return Err(ApiError::BadRequest(format!(
                "resourceVersionMatch: Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
        _ => {
            if token.is_none() {
                ensure_fresh(ctx).await?;
            }
        }
    }
    let resource = ctx.def.storage_resource();
    let page = if let Some(name) = filter.single_name() {
        let ns = namespace.unwrap_or("");
        let revision = ctx.app.store.revision();
        let items = if namespace.is_some() || !ctx.def.namespaced {
            ctx.app
                .store
                .get(&resource, ns, name)
                .filter(|o| filter.matches(o))
                .into_iter()
                .collect()
        } else {
            ctx.app
                .store
                .list(&resource, None, None, 0, &|o| {
                    o.name == name && filter.matches(o)
                })
                .items
        };
        crate::store::ListPage {
            items,
            revision,
            next: None,
            remaining: 0,
        }
    } else {
        let after = token.as_ref().map(|t| (t.ns.as_str(), t.name.as_str()));
        ctx.app
            .store
            .list(&resource, namespace, after, limit, &|o| filter.matches(o))
    };
    let revision = token.as_ref().map(|t| t.rv).unwrap_or(page.revision);
    let mut list_meta = json!({"resourceVersion": revision.to_string()});
    if let Some((ns, name)) = &page.next {
        list_meta["continue"] = json!(encode_continue(revision, ns, name));
        list_meta["remainingItemCount"] = json!(page.remaining);
    }
    match ctx.wanted {
        Wanted::Table(version) => {
            let values: Vec<Value> = page.items.iter().map(|o| o.value()).collect();
            let t = table::build(
                &ctx.def,
                &values,
                list_meta,
                version,
                table::include_object(ctx.query)?,
            );
            Ok(json_response(StatusCode::OK, &t))
        }
        Wanted::PartialMetadata => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|o| table::partial_metadata(&o.value()))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "items": items}),
            ))
        }
        Wanted::Yaml => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|o| {
                    let mut v = o.value();
                    ctx.def.set_served_version(&mut v);
                    v
                })
                .collect();
            let v = json!({"kind": format!("{}List", ctx.def.kind), "apiVersion": ctx.def.api_version(), "metadata": list_meta, "items": items});
            let text =
                serde_saphyr::to_string(&v).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(bytes_response(
                StatusCode::OK,
                text.into_bytes(),
                "application/yaml",
            ))
        }
        _ => {
            // Splice the stored JSON: no parse, no re-serialisation per item.
            let head = serde_json::to_vec(&json!({
                "kind": format!("{}List", ctx.def.kind),
                "apiVersion": ctx.def.api_version(),
                "metadata": list_meta,
            }))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
            let size: usize =
                page.items.iter().map(|o| o.json.len() + 1).sum::<usize>() + head.len() + 16;
            let mut out = Vec::with_capacity(size);
            out.extend_from_slice(&head[..head.len() - 1]);
            out.extend_from_slice(b",\"items\":[");
            for (i, o) in page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&ctx.def.served_json(&o.json));
            }
            out.extend_from_slice(b"]}");
            Ok(bytes_response(StatusCode::OK, out, "application/json"))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writes

fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

fn meta_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let o = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))?;
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("metadata must be an object".into()))
}

fn meta_str<'v>(obj: &'v Value, field: &str) -> Option<&'v str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Checks apiVersion/kind of a body against the resource and fills them in when absent.
fn check_type(ctx: &Ctx<'_>, obj: &mut Value) -> Result<(), ApiError> {
    type_mismatch(ctx, obj)?;
    fill_type(ctx, obj);
    Ok(())
}

/// Fills in the apiVersion and kind of the resource where a body (checked by
/// [`type_mismatch`]) leaves them missing or empty.
fn fill_type(ctx: &Ctx<'_>, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let missing = |o: &Map<String, Value>, field: &str| {
        o.get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    };
    if missing(o, "apiVersion") {
        o.insert("apiVersion".into(), json!(ctx.def.api_version()));
    }
    if missing(o, "kind") {
        o.insert("kind".into(), json!(ctx.def.kind));
    }
}

/// The error for a body that is no JSON object, or names another apiVersion or kind than
/// the URL's; a missing or empty apiVersion or kind is no error.
fn type_mismatch(ctx: &Ctx<'_>, obj: &Value) -> Result<(), ApiError> {
    let expected_version = ctx.def.api_version();
    let o = obj
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))?;
    match o.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {}
        Some(v) if v == expected_version => {}
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
    }
    match o.get("kind").and_then(Value::as_str) {
        None | Some("") => {}
        Some(k) if k == ctx.def.kind => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                ctx.def.kind
            )));
        }
    }
    Ok(())
}

/// `fieldValidation`: Strict fails on unknown fields, Warn (the default) returns warnings.
fn field_validation(ctx: &Ctx<'_>, obj: &Value) -> Result<Vec<String>, ApiError> {
    let mode = ctx.query.get("fieldValidation").unwrap_or("Warn");
    let mode = match mode {
        "Strict" | "Warn" | "Ignore" => mode,
        "" => "Warn",
        other => {
            return Err(ApiError::BadRequest(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    };
    if mode == "Ignore" {
        return Ok(vec![]);
    }
    let Some(msg) = schema::message_for_kind(&ctx.def.group, &ctx.def.version, &ctx.def.kind)
    else {
        return Ok(vec![]);
    };
    let unknown = schema::unknown_fields(msg, obj);
    if unknown.is_empty() {
        return Ok(vec![]);
    }
    if mode == "Strict" {
        return Err(ApiError::BadRequest(schema::strict_decoding_error(
            &unknown,
        )));
    }
    Ok(unknown
        .iter()
        .map(|f| schema::unknown_field_message(f))
        .collect())
}

/// kube-apiserver's Invalid error from field errors of the CRD module.
fn invalid_crd(ctx: &Ctx<'_>, name: &str, errs: &[crd::FieldError]) -> ApiError {
    let kind_group = if ctx.def.group.is_empty() {
        ctx.def.kind.clone()
    } else {
        format!("{}.{}", ctx.def.kind, ctx.def.group)
    };
    let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let joined = if texts.len() == 1 {
        texts[0].clone()
    } else {
        format!("[{}]", texts.join(", "))
    };
    invalid_with(
        ctx,
        name,
        format!("{kind_group} \"{name}\" is invalid: {joined}"),
        errs.iter().map(|e| Cause {
            reason: e.reason().to_string(),
            message: e.message(),
            field: e.field.clone(),
        }),
    )
}

/// kube-apiserver's Invalid error for this request's kind.
fn invalid_with(
    ctx: &Ctx<'_>,
    name: &str,
    message: String,
    causes: impl Iterator<Item = Cause>,
) -> ApiError {
    ApiError::Invalid {
        kind: ctx.def.kind.clone(),
        group: ctx.def.group.clone(),
        name: name.to_string(),
        message,
        causes: causes.collect(),
    }
}

fn is_crd_kind(ctx: &Ctx<'_>) -> bool {
    ctx.def.group == "apiextensions.k8s.io" && ctx.def.plural == "customresourcedefinitions"
}

/// Kind-specific checks beyond field validation: a CRD must be a valid CRD; a custom object is
/// defaulted, pruned and validated by its CRD's schema. Returns `fieldValidation` warnings for
/// pruned fields.
fn schema_checks(ctx: &Ctx<'_>, name: &str, obj: &mut Value) -> Result<Vec<String>, ApiError> {
    if is_crd_kind(ctx) {
        crd::parse_crd(obj).map_err(|errs| invalid_crd(ctx, name, &errs))?;
        return Ok(vec![]);
    }
    let Some(schema) = ctx
        .def
        .custom
        .as_ref()
        .and_then(|c| c.version.schema.as_ref())
    else {
        return Ok(vec![]);
    };
    crd::apply_schema_defaults(obj, schema);
    let pruned = crd::prune(obj, schema);
    let mode = ctx.query.get("fieldValidation").unwrap_or("Warn");
    let warnings = if pruned.is_empty() || mode == "Ignore" {
        vec![]
    } else if mode == "Strict" {
        return Err(ApiError::BadRequest(schema::strict_decoding_error(&pruned)));
    } else {
        pruned
            .iter()
            .map(|f| schema::unknown_field_message(f))
            .collect()
    };
    let errs = crd::validate(obj, schema);
    if !errs.is_empty() {
        return Err(invalid_crd(ctx, name, &errs));
    }
    Ok(warnings)
}

fn invalid(ctx: &Ctx<'_>, name: &str, errs: &[validation::FieldError]) -> ApiError {
    invalid_with(
        ctx,
        name,
        validation::invalid_message(&ctx.def.kind, &ctx.def.group, name, errs),
        errs.iter().map(|e| Cause {
            reason: e.reason().to_string(),
            message: e.message(),
            field: e.field.clone(),
        }),
    )
}

fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut()
                .append(HeaderName::from_static("warning"), v);
        }
    }
    resp
}

fn spec_of(obj: &Value) -> Value {
    match obj {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Prepares a new object: identity, timestamps, generation, namespace, name.
fn prepare_create(ctx: &Ctx<'_>, obj: &mut Value) -> Result<(), ApiError> {
    check_type(ctx, obj)?;
    let namespaced = ctx.def.namespaced;
    let tracks_generation = ctx.def.tracks_generation;
    let has_status = ctx.def.has_status;
    let kind = ctx.def.kind.clone();
    let meta = meta_mut(obj)?;
    if namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), json!(ctx.namespace));
            }
            Some(ns) if ns == ctx.namespace => {}
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
        }
    } else {
        meta.remove("namespace");
    }
    let name_empty = meta
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if name_empty
        && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
        && !prefix.is_empty()
    {
        let cut: String = prefix.chars().take(58).collect();
        meta.insert("name".into(), json!(format!("{cut}{}", random_suffix())));
    }
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::BadRequest(
            "resourceVersion should not be set on objects to be created".into(),
        ));
    }
    meta.remove("resourceVersion");
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    if kind == "CustomResourceDefinition" {
        let fins = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = fins.as_array_mut()
            && !list
                .iter()
                .any(|f| f == crate::controllers::crd::CLEANUP_FINALIZER)
        {
            list.push(json!(crate::controllers::crd::CLEANUP_FINALIZER));
        }
    }
    if tracks_generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if has_status && let Some(o) = obj.as_object_mut() {
        // A new object's status is the server's to write (defaulting fills what users see:
        // a pod's phase and QoS class, a namespace's phase).
        o.insert("status".into(), json!({}));
    }
    Ok(())
}

async fn create(ctx: &Ctx<'_>, obj: Value) -> Result<Response, ApiError> {
    let written = create_object(ctx, obj, false).await?;
    Ok(with_warnings(
        respond_object(ctx, StatusCode::CREATED, &written.json)?,
        &written.warnings,
    ))
}

/// Creates an object: field validation, preparation, validation, then the Raft write
/// (retrying a clashing generated name).
async fn create_object(ctx: &Ctx<'_>, mut obj: Value, tracked: bool) -> Result<Written, ApiError> {
    let dry_run = ctx.dry_run()?;
    let warnings = field_validation(ctx, &obj)?;
    prepare_create(ctx, &mut obj)?;
    let service_name = meta_str(&obj, "name").unwrap_or("").to_string();
    allocate_service(ctx, &service_name, &mut obj, None)?;
    defaults::apply_defaults(&ctx.def.group, &ctx.def.plural, &mut obj);
    if ctx.def.group.is_empty() && ctx.def.plural == "pods" {
        crate::controllers::taints::add_default_tolerations(&mut obj);
        let sa_name = obj
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let sa = ctx
            .app
            .store
            .get("serviceaccounts", &ctx.namespace, &sa_name)
            .map(|o| o.value());
        crate::resources::service_account_admission::add_token_volume(
            &mut obj,
            sa.as_ref(),
            &random_suffix(),
        );
    }
    let name = meta_str(&obj, "name").unwrap_or("").to_string();
    let mut warnings = warnings;
    warnings.extend(schema_checks(ctx, &name, &mut obj)?);
    if !tracked {
        ctx.track(None, &mut obj, None);
    }
    let errs = validation::validate_create(&ctx.def.group, &ctx.def.plural, &obj);
    if !errs.is_empty() {
        return Err(invalid(ctx, &name, &errs));
    }
    if ctx.def.namespaced {
        check_namespace_active(ctx)?;
    }
    if let Some(id) = &ctx.identity
        && ctx.def.group == "rbac.authorization.k8s.io"
    {
        super::authz::check_escalation(
            &ctx.app.store,
            id,
            &ctx.def.plural,
            &ctx.namespace,
            &obj,
            None,
        )?;
    }
    if dry_run {
        let json =
            Bytes::from(serde_json::to_vec(&obj).map_err(|e| ApiError::Internal(e.to_string()))?);
        return Ok(Written { json, warnings });
    }
    let generated = meta_str(&obj, "generateName").is_some_and(|g| !g.is_empty()) && name.len() > 5;
    let mut name = name;
    mark_resource_version(&mut obj)?;
    let mut allocation_retries = 0;
    let mut attempt = 0;
    while attempt < UPDATE_ATTEMPTS {
        attempt += 1;
        let bytes =
            Bytes::from(serde_json::to_vec(&obj).map_err(|e| ApiError::Internal(e.to_string()))?);
        let create = Command::Create {
            key: ctx.key(&name),
            object: bytes,
        };
        let (result, back) = ctx.propose_value(create, obj).await;
        // A write that failed leaves the value offered with it.
        let taken_back =
            || back.ok_or_else(|| ApiError::Internal("a failed create took its object".into()));
        match result? {
            CommandResult::Stored(json) => return Ok(Written { json, warnings }),
            CommandResult::Failed(ApplyError::AllocationConflict)
                if allocation_retries < ALLOCATION_RETRIES =>
            {
                obj = taken_back()?;
                // Another Service took the address meanwhile: allocate again (after a little
                // jitter, so that concurrent creates stop choosing the same free address).
                allocation_retries += 1;
                attempt -= 1;
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 4);
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                let spec = obj.get_mut("spec").and_then(Value::as_object_mut);
                if let Some(spec) = spec {
                    for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                        spec.remove(k);
                    }
                }
                allocate_service(ctx, &name, &mut obj, None)?;
                defaults::apply_defaults(&ctx.def.group, &ctx.def.plural, &mut obj);
                mark_resource_version(&mut obj)?;
            }
            CommandResult::Failed(ApplyError::AlreadyExists)
                if generated && attempt < UPDATE_ATTEMPTS =>
            {
                obj = taken_back()?;
                // A generated name clashed: draw another suffix.
                let base: String = name.chars().take(name.len() - 5).collect();
                name = format!("{base}{}", random_suffix());
                meta_mut(&mut obj)?.insert("name".into(), json!(name));
            }
            other => return Err(apply_failure(ctx, &name, other)),
        }
    }
    Err(ApiError::AlreadyExists(ctx.target(&name)))
}

/// Puts the store's marker in `metadata.resourceVersion`: applying the write splices the log
/// index there instead of re-encoding the object.
fn mark_resource_version(obj: &mut Value) -> Result<(), ApiError> {
    meta_mut(obj)?.insert("resourceVersion".into(), json!(crate::store::RV_MARKER));
    Ok(())
}

/// Allocates a Service's ClusterIP and node ports (create: `old` None) against every other
/// Service; the store decides clashes when the write is applied.
fn allocate_service(
    ctx: &Ctx<'_>,
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if !(ctx.def.group.is_empty() && ctx.def.plural == "services") {
        return Ok(());
    }
    let services: Vec<Value> = ctx
        .app
        .store
        .list("services", None, None, 0, &|_| true)
        .items
        .iter()
        .map(|o| o.value())
        .collect();
    let (ips, ports) = crate::controllers::services::used_allocations(&services);
    let alloc = &ctx.app.service_allocators;
    let result = match old {
        None => alloc.prepare_service_create(obj, &ips, &ports),
        Some(o) => alloc.prepare_service_update(o, obj, &ips, &ports),
    };
    result.map_err(|errs| {
        if errs.iter().any(|e| e.contains("range is full")) {
            return ApiError::Internal(errs.join("; "));
        }
        let joined = if errs.len() == 1 {
            errs[0].clone()
        } else {
            format!("[{}]", errs.join(", "))
        };
        ApiError::Invalid {
            kind: "Service".into(),
            group: String::new(),
            name: name.to_string(),
            message: format!("Service \"{name}\" is invalid: {joined}"),
            causes: vec![],
        }
    })
}

/// NamespaceLifecycle admission: nothing new in a namespace that is being deleted.
fn check_namespace_active(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    if let Some(ns) = ctx.app.store.get("namespaces", "", &ctx.namespace)
        && ns.deleting
    {
        return Err(ApiError::Forbidden(format!(
            "{} is forbidden: unable to create new content in namespace {} because it is being terminated",
            ctx.def.qualified_plural(),
            ctx.namespace
        )));
    }
    Ok(())
}

fn apply_failure(ctx: &Ctx<'_>, name: &str, result: CommandResult) -> ApiError {
    match result {
        CommandResult::Failed(ApplyError::AlreadyExists) => {
            ApiError::AlreadyExists(ctx.target(name))
        }
        CommandResult::Failed(ApplyError::NotFound) => ApiError::NotFound(ctx.target(name)),
        CommandResult::Failed(ApplyError::Conflict) => {
            ApiError::Conflict(ctx.target(name), CONFLICT_MESSAGE.into())
        }
        CommandResult::Failed(ApplyError::NamespaceNotFound) => ApiError::NotFound(Target {
            group: String::new(),
            resource: "namespaces".into(),
            name: ctx.namespace.clone(),
        }),
        CommandResult::Failed(ApplyError::UidPrecondition { actual }) => ApiError::Conflict(
            ctx.target(name),
            format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {actual}",
                ctx.query.get("uid").unwrap_or("")
            ),
        ),
        CommandResult::Failed(ApplyError::RvPrecondition { actual }) => ApiError::Conflict(
            ctx.target(name),
            format!(
                "Precondition failed: ResourceVersion in precondition does not match ResourceVersion in object meta: {actual}"
            ),
        ),
        CommandResult::Failed(ApplyError::UidMismatch) => {
            ApiError::Conflict(ctx.target(name), CONFLICT_MESSAGE.into())
        }
        CommandResult::Failed(ApplyError::BadObject(e)) => ApiError::Internal(e),
        CommandResult::Failed(ApplyError::AllocationConflict) => ApiError::Conflict(
            ctx.target(name),
            "a ClusterIP or node port of this Service was allocated to another Service; retry"
                .into(),
        ),
        CommandResult::Noop | CommandResult::Stored(_) => {
            ApiError::Internal("unexpected apply result".into())
        }
    }
}

/// The outcome of merging a new object into the stored one.
enum Merge {
    /// Nothing changed: answer with the stored object.
    Unchanged,
    /// Write this.
    Write(Value),
}

/// Whether `def` serves `sub` through the generic get/update/patch paths: `status` where the
/// kind has one, `resize` for pods (in-place resource changes, Kubernetes 1.33) unless
/// that is switched off, and `ephemeralcontainers` for pods (`kubectl debug`).
fn subresource_served(app: &ApiState, def: &ResourceDef, sub: Option<&str>) -> bool {
    match sub {
        None => true,
        Some("status") => def.has_status,
        Some("resize") => app.in_place_resize && def.group.is_empty() && def.plural == "pods",
        Some("ephemeralcontainers") => def.group.is_empty() && def.plural == "pods",
        Some(_) => false,
    }
}

/// A resize: `pod` takes the containers' resources (and resize policies) from `body`, by
/// container name; nothing else.
fn take_resources(pod: &mut Value, body: &Value) {
    for list in ["containers", "initContainers"] {
        let wanted: std::collections::HashMap<String, Value> = body
            .pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c.clone())))
            .collect();
        for c in pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(w) = c
                .get("name")
                .and_then(Value::as_str)
                .and_then(|n| wanted.get(n))
            else {
                continue;
            };
            for field in ["resources", "resizePolicy"] {
                match w.get(field) {
                    Some(v) => c[field] = v.clone(),
                    None => {
                        c.as_object_mut().map(|m| m.remove(field));
                    }
                }
            }
        }
    }
}

/// An ephemeralcontainers write: `pod` takes the ephemeral containers from `body`; nothing
/// else (upstream's `dropNonEphemeralContainerUpdates`).
fn take_ephemeral_containers(pod: &mut Value, body: &Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match body
        .pointer("/spec/ephemeralContainers")
        .filter(|e| !e.is_null())
    {
        Some(e) => spec.insert("ephemeralContainers".into(), e.clone()),
        None => spec.shift_remove("ephemeralContainers"),
    };
}

/// Turns a client's new object into what is stored: immutable metadata kept, status or spec
/// kept by subresource, generation bumped on spec change, validated.
fn merge_update(
    ctx: &Ctx<'_>,
    name: &str,
    old: &Value,
    body: Cow<'_, Value>,
    sub: Option<&str>,
    validate: bool,
) -> Result<Merge, ApiError> {
    type_mismatch(ctx, &body)?;
    let body_name = meta_str(&body, "name").map(str::to_string);
    match body_name.as_deref() {
        Some(n) if n != name => {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    if ctx.def.namespaced
        && let Some(ns) = meta_str(&body, "namespace")
        && !ns.is_empty()
        && ns != ctx.namespace
    {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    // A subresource write takes only its part of the body, onto a copy of the stored object.
    let mut new = if let Some(pod_sub @ ("resize" | "ephemeralcontainers")) = sub {
        let mut merged = old.clone();
        if pod_sub == "resize" {
            take_resources(&mut merged, &body);
        } else {
            take_ephemeral_containers(&mut merged, &body);
        }
        if let (Some(m), Some(meta)) = (
            body.pointer("/metadata/managedFields").cloned(),
            merged.get_mut("metadata").and_then(Value::as_object_mut),
        ) {
            meta.insert("managedFields".into(), m);
        }
        merged
    } else if sub == Some("status") {
        // Status writes change only status (and the managedFields recording them); a pod's
        // also its labels and annotations, as kube-apiserver's pod status strategy resets only
        // spec, deletionTimestamp and ownerReferences.
        let status = body.get("status").cloned();
        let managed = body.pointer("/metadata/managedFields").cloned();
        let pod_meta = (ctx.def.group.is_empty() && ctx.def.plural == "pods").then(|| {
            (
                body.pointer("/metadata/labels").cloned(),
                body.pointer("/metadata/annotations").cloned(),
            )
        });
        let mut merged = old.clone();
        if let Some((labels, annotations)) = pod_meta
            && let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut)
        {
            for (key, value) in [("labels", labels), ("annotations", annotations)] {
                match value {
                    Some(v) => meta.insert(key.into(), v),
                    None => meta.remove(key),
                };
            }
        }
        if let Some(o) = merged.as_object_mut() {
            match status {
                Some(s) => o.insert("status".into(), s),
                None => o.remove("status"),
            };
        }
        if let Some(m) = managed
            && let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("managedFields".into(), m);
        }
        merged
    } else {
        let mut new = body.into_owned();
        fill_type(ctx, &mut new);
        // A binding sets the PodScheduled condition itself; other writes keep the status.
        if ctx.def.has_status
            && sub != Some("binding")
            && let Some(o) = new.as_object_mut()
        {
            match old.get("status") {
                Some(s) => o.insert("status".into(), s.clone()),
                None => o.remove("status"),
            };
        }
        new
    };
    let no_meta = Value::Object(Map::new());
    let old_meta = old.get("metadata").unwrap_or(&no_meta);
    {
        let meta = meta_mut(&mut new)?;
        meta.insert("name".into(), json!(name));
        if ctx.def.namespaced {
            meta.insert("namespace".into(), json!(ctx.namespace));
        }
        for keep in [
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(keep) {
                Some(v) => meta.insert(keep.into(), v.clone()),
                None => meta.remove(keep),
            };
        }
        match meta.get("uid").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert(
                    "uid".into(),
                    old_meta.get("uid").cloned().unwrap_or(Value::Null),
                );
            }
            Some(_) => {}
        }
        meta.insert(
            "resourceVersion".into(),
            old_meta
                .get("resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
        meta.remove("selfLink");
    }
    if ctx.def.tracks_generation && spec_of(old) != spec_of(&new) {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta_mut(&mut new)?.insert("generation".into(), json!(generation));
    }
    if old
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        let before: Vec<&Value> = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let added: Vec<String> = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|f| !before.contains(f))
                    .map(|f| format!("{f}"))
                    .collect()
            })
            .unwrap_or_default();
        if !added.is_empty() {
            let detail = format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                added.join(", ")
            );
            return Err(invalid(
                ctx,
                name,
                &[validation::FieldError::forbidden(
                    "metadata.finalizers",
                    detail,
                )],
            ));
        }
    }
    allocate_service(ctx, name, &mut new, Some(old))?;
    defaults::apply_defaults(&ctx.def.group, &ctx.def.plural, &mut new);
    schema_checks(ctx, name, &mut new)?;
    let errs = if validate && sub == Some("resize") {
        // The resize subresource is the one way a pod's resources change: the spec
        // immutability check compares against the old pod with the new resources.
        let mut resized = old.clone();
        resized["spec"] = new.get("spec").cloned().unwrap_or(Value::Null);
        let mut errs = validation::validate_update(&ctx.def.group, &ctx.def.plural, &resized, &new);
        errs.extend(validation::validate_pod_resize(old, &new));
        errs
    } else if validate && sub == Some("ephemeralcontainers") {
        // As for a resize: the update checks see the old pod with the new ephemeral containers.
        let mut added = old.clone();
        added["spec"] = new.get("spec").cloned().unwrap_or(Value::Null);
        let mut errs = validation::validate_update(&ctx.def.group, &ctx.def.plural, &added, &new);
        errs.extend(validation::validate_pod_ephemeral_containers(old, &new));
        errs
    } else if validate {
        validation::validate_update(&ctx.def.group, &ctx.def.plural, old, &new)
    } else {
        vec![]
    };
    if !errs.is_empty() {
        return Err(invalid(ctx, name, &errs));
    }
    if let Some(id) = &ctx.identity
        && ctx.def.group == "rbac.authorization.k8s.io"
    {
        super::authz::check_escalation(
            &ctx.app.store,
            id,
            &ctx.def.plural,
            &ctx.namespace,
            &new,
            Some(old),
        )?;
    }
    if validation::same_json(&new, old) {
        return Ok(Merge::Unchanged);
    }
    Ok(Merge::Write(new))
}

/// What a client asks an object to become.
struct Change<'a> {
    /// The new object (for a subresource, the body whose part it takes).
    object: Cow<'a, Value>,
    /// The resourceVersion the client named, if any: a mismatch is a conflict, not a retry.
    expected_rv: Option<u64>,
    /// `fieldValidation=Warn` warnings.
    warnings: Vec<String>,
    /// A change the server makes on the client's behalf (binding, scale) rather than an
    /// object the client wrote: update validation (immutable fields) does not apply.
    server_side: bool,
    /// managedFields are already computed (server-side apply).
    tracked: bool,
}

/// The object a write left (or found unchanged), and the warnings to send with it.
struct Written {
    json: Bytes,
    warnings: Vec<String>,
}

impl Written {
    fn respond(self, ctx: &Ctx<'_>) -> Result<Response, ApiError> {
        Ok(with_warnings(
            respond_object(ctx, StatusCode::OK, &self.json)?,
            &self.warnings,
        ))
    }
}

/// Read-modify-write with retries: `change` computes the new object from the stored one.
async fn read_modify_write<'a>(
    ctx: &Ctx<'_>,
    name: &str,
    sub: Option<&str>,
    mut change: impl FnMut(&Value) -> Result<Change<'a>, ApiError>,
) -> Result<Written, ApiError> {
    let dry_run = ctx.dry_run()?;
    let resource = ctx.def.storage_resource();
    for _ in 0..UPDATE_ATTEMPTS {
        let stored = ctx
            .app
            .store
            .get(&resource, &ctx.namespace, name)
            .ok_or_else(|| ApiError::NotFound(ctx.target(name)))?;
        let old = stored.parsed();
        let Change {
            object: new,
            expected_rv,
            warnings,
            server_side,
            tracked,
        } = change(&old)?;

        if let Some(rv) = expected_rv
            && rv != stored.resource_version
        {
            return Err(ApiError::Conflict(
                ctx.target(name),
                CONFLICT_MESSAGE.into(),
            ));
        }
        let merged = merge_update(ctx, name, &old, new, sub, !server_side)?;
        let mut new = match merged {
            Merge::Unchanged => {
                return Ok(Written {
                    json: stored.json.clone(),
                    warnings,
                });
            }
            Merge::Write(mut v) => {
                if !tracked {
                    ctx.track(Some(&old), &mut v, sub);
                }
                v
            }
        };
        let to_bytes =
            |v: &Value| serde_json::to_vec(v).map_err(|e| ApiError::Internal(e.to_string()));
        if dry_run {
            return Ok(Written {
                json: Bytes::from(to_bytes(&new)?),
                warnings,
            });
        }
        // The last finalizer of an object being deleted is gone: the update removes it, and
        // the answer shows the object as it was last.
        let (result, last) = if deletion::ready_to_remove(&new) {
            let command = Command::Delete {
                key: ctx.key(name),
                precondition: Precondition {
                    uid: Some(stored.uid.clone()),
                    resource_version: Some(stored.resource_version),
                },
            };
            let last = Bytes::from(to_bytes(&new)?);
            (ctx.propose(command).await, Some(last))
        } else {
            mark_resource_version(&mut new)?;
            let command = Command::Update {
                key: ctx.key(name),
                expected_rv: stored.resource_version,
                object: Bytes::from(to_bytes(&new)?),
            };
            (ctx.propose_value(command, new).await.0, None)
        };
        match result? {
            CommandResult::Stored(json) => {
                return Ok(Written {
                    json: last.unwrap_or(json),
                    warnings,
                });
            }
            CommandResult::Failed(ApplyError::AllocationConflict) => continue,
            CommandResult::Failed(ApplyError::Conflict | ApplyError::RvPrecondition { .. })
                if expected_rv.is_none() =>
            {
                continue;
            }
            CommandResult::Failed(ApplyError::RvPrecondition { .. }) => {
                return Err(ApiError::Conflict(
                    ctx.target(name),
                    CONFLICT_MESSAGE.into(),
                ));
            }
            other => return Err(apply_failure(ctx, name, other)),
        }
    }
    Err(ApiError::Conflict(
        ctx.target(name),
        CONFLICT_MESSAGE.into(),
    ))
}

async fn update(
    ctx: &Ctx<'_>,
    name: &str,
    sub: Option<&str>,
    obj: Value,
) -> Result<Response, ApiError> {
    let warnings = field_validation(ctx, &obj)?;
    replace_object(ctx, name, sub, &obj, warnings)
        .await?
        .respond(ctx)
}

/// Replaces the object (or its status) with `obj`, whose resourceVersion, when set, is a
/// precondition.
async fn replace_object(
    ctx: &Ctx<'_>,
    name: &str,
    sub: Option<&str>,
    obj: &Value,
    warnings: Vec<String>,
) -> Result<Written, ApiError> {
    let expected_rv = match meta_str(obj, "resourceVersion") {
        None | Some("") => None,
        Some(rv) => Some(parse_rv(rv)?),
    };
    read_modify_write(ctx, name, sub, |_| {
        Ok(Change {
            object: Cow::Borrowed(obj),
            expected_rv,
            warnings: warnings.clone(),
            server_side: false,
            tracked: false,
        })
    })
    .await
}

/// The patch types kube-apiserver accepts.
const PATCH_TYPES: &str = "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml";

async fn patch(
    ctx: &Ctx<'_>,
    name: &str,
    sub: Option<&str>,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    if body::media_type(content_type) == "application/apply-patch+yaml" {
        return server_side_apply(ctx, name, sub, bytes).await;
    }
    let kind = patch_kind(content_type)?;
    let patch_doc = body::decode_json(bytes)?;
    patch_object(ctx, name, sub, kind, &patch_doc)
        .await?
        .respond(ctx)
}

/// Applies a JSON, merge or strategic merge patch to the stored object.
async fn patch_object(
    ctx: &Ctx<'_>,
    name: &str,
    sub: Option<&str>,
    kind: PatchKind,
    patch_doc: &Value,
) -> Result<Written, ApiError> {
    let patch_schema = schema::message_for_kind(&ctx.def.group, &ctx.def.version, &ctx.def.kind);
    read_modify_write(ctx, name, sub, |old| {
        let new = apply_patch_doc(ctx, kind, old, patch_doc, patch_schema)?;
        // A resourceVersion in the patch is a precondition.
        let expected_rv = match meta_str(&new, "resourceVersion") {
            Some(rv) if Some(rv) != meta_str(old, "resourceVersion") => Some(parse_rv(rv)?),
            _ => None,
        };
        let warnings = field_validation(ctx, &new)?;
        Ok(Change {
            object: Cow::Owned(new),
            expected_rv,
            warnings,
            server_side: false,
            tracked: false,
        })
    })
    .await
}

/// `application/apply-patch+yaml`: server-side apply, creating the object if it is missing.
async fn server_side_apply(
    ctx: &Ctx<'_>,
    name: &str,
    sub: Option<&str>,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    if ctx.query.get("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::Invalid {
            kind: "PatchOptions".into(),
            group: "meta.k8s.io".into(),
            name: String::new(),
            message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            causes: vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: is required for apply patch".into(),
                field: "fieldManager".into(),
            }],
        });
    }
    let force = ctx.query.flag("force");
    let mut applied = body::decode_yaml(bytes)?;
    if !applied.is_object() {
        return Err(ApiError::BadRequest(
            "the apply configuration must be an object".into(),
        ));
    }
    check_type(ctx, &mut applied)?;
    match meta_str(&applied, "name") {
        Some(n) if n != name => {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    let exists = ctx
        .app
        .store
        .get(&ctx.def.storage_resource(), &ctx.namespace, name)
        .is_some();
    if !exists && sub.is_none() {
        let warnings = field_validation(ctx, &applied)?;
        let mut obj = ctx.apply(None, &applied, force, None)?;
        meta_mut(&mut obj)?.insert("name".into(), json!(name));
        let written = create_object(ctx, obj, true).await?;
        return Ok(with_warnings(
            respond_object(ctx, StatusCode::CREATED, &written.json)?,
            &[warnings, written.warnings].concat(),
        ));
    }
    read_modify_write(ctx, name, sub, |old| {
        let warnings = field_validation(ctx, &applied)?;
        let new = ctx.apply(Some(old), &applied, force, sub)?;
        let expected_rv = match meta_str(&applied, "resourceVersion") {
            Some(rv) if !rv.is_empty() => Some(parse_rv(rv)?),
            _ => None,
        };
        Ok(Change {
            object: Cow::Owned(new),
            expected_rv,
            warnings,
            server_side: false,
            tracked: true,
        })
    })
    .await?
    .respond(ctx)
}

fn patch_kind(content_type: Option<&str>) -> Result<PatchKind, ApiError> {
    let media = body::media_type(content_type);
    match media.as_str() {
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "the server does not support the media type \"{media}\" for patches: accepted media types include {PATCH_TYPES}"
        ))),
    }
}

/// Applies a patch document to `old`.
fn apply_patch_doc(
    ctx: &Ctx<'_>,
    kind: PatchKind,
    old: &Value,
    patch_doc: &Value,
    patch_schema: Option<schema::Message>,
) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch_doc.clone())
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
            let mut doc = old.clone();
            // kube-apiserver answers a failed JSON patch with a generic 422 whose cause carries
            // the patch error; kubectl prints "The request is invalid: <cause>".
            json_patch::patch(&mut doc, &ops).map_err(|e| ApiError::Invalid {
                kind: String::new(),
                group: String::new(),
                name: String::new(),
                message: "the server rejected our request due to an error in our request".into(),
                causes: vec![Cause {
                    reason: "UnexpectedServerResponse".into(),
                    message: e.to_string(),
                    field: String::new(),
                }],
            })?;
            Ok(doc)
        }
        PatchKind::Merge => {
            if !patch_doc.is_object() {
                return Err(ApiError::BadRequest(
                    "json: cannot unmarshal a non-object merge patch".into(),
                ));
            }
            let mut doc = old.clone();
            json_patch::merge(&mut doc, patch_doc);
            Ok(doc)
        }
        PatchKind::Strategic => {
            let Some(schema) = patch_schema else {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "strategic merge patch format is not supported for {}",
                    ctx.def.qualified_plural()
                )));
            };
            super::strategic_merge::apply_patch(old, patch_doc, Some(schema)).map_err(|e| {
                match e.status_code() {
                    422 => ApiError::Invalid {
                        kind: String::new(),
                        group: String::new(),
                        name: String::new(),
                        message: e.to_string(),
                        causes: vec![],
                    },
                    500 => ApiError::Internal(e.to_string()),
                    _ => ApiError::BadRequest(e.to_string()),
                }
            })
        }
    }
}

#[derive(Clone, Copy)]
enum PatchKind {
    Json,
    Merge,
    Strategic,
}

/// DeleteOptions from the body (JSON or protobuf) and the query.
struct DeleteOptions {
    precondition: Precondition,
    request: deletion::DeleteRequest,
    /// `dryRun=All` in the query or the DeleteOptions body (where kubectl puts it).
    dry_run: bool,
}

fn delete_options(
    ctx: &Ctx<'_>,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<DeleteOptions, ApiError> {
    let mut precondition = Precondition::default();
    let mut request = deletion::DeleteRequest::default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        body::decode_object(content_type, bytes)?
    };
    if let Some(p) = body.get("preconditions") {
        precondition.uid = p.get("uid").and_then(Value::as_str).map(str::to_string);
        if let Some(rv) = p.get("resourceVersion").and_then(Value::as_str) {
            precondition.resource_version = Some(parse_rv(rv)?);
        }
    }
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(ctx.query.get("propagationPolicy"));
    request.propagation = match policy {
        None | Some("") => match body.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => Some(deletion::Propagation::Orphan),
            Some(false) => Some(deletion::Propagation::Background),
            None => None,
        },
        Some("Background") => Some(deletion::Propagation::Background),
        Some("Foreground") => Some(deletion::Propagation::Foreground),
        Some("Orphan") => Some(deletion::Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    };
    let grace =
        match body.get("gracePeriodSeconds") {
            Some(v) if !v.is_null() => Some(v.as_i64().ok_or_else(|| {
                ApiError::BadRequest("gracePeriodSeconds must be an integer".into())
            })?),
            _ => match ctx.query.get("gracePeriodSeconds") {
                Some(g) if !g.is_empty() => Some(g.parse::<i64>().map_err(|_| {
                    ApiError::BadRequest(format!("invalid gracePeriodSeconds: {g:?}"))
                })?),
                _ => None,
            },
        };
    if let Some(g) = grace
        && g < 0
    {
        return Err(ApiError::Invalid {
            kind: "DeleteOptions".into(),
            group: String::new(),
            name: String::new(),
            message: format!(
                "DeleteOptions \"\" is invalid: gracePeriodSeconds: Invalid value: {g}: must be greater than or equal to 0"
            ),
            causes: vec![],
        });
    }
    request.grace_period_seconds = grace;
    let dry_run = match body.get("dryRun") {
        Some(Value::Array(modes)) => match modes.iter().find(|m| m.as_str() != Some("All")) {
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid dry run value {other}: valid values are \"All\""
                )));
            }
            None => !modes.is_empty(),
        },
        _ => false,
    } || ctx.dry_run()?;
    if let Some(uid) = ctx.query.get("uid").filter(|u| !u.is_empty()) {
        precondition.uid.get_or_insert_with(|| uid.to_string());
    }
    Ok(DeleteOptions {
        precondition,
        request,
        dry_run,
    })
}

/// What a delete did.
enum Deleted {
    /// The object is gone; its last state.
    Removed(Bytes),
    /// The object is marked for deletion (finalizers, grace period); its new state.
    Marked(Bytes),
}

/// Deletes (or marks) one object, retrying when it changes underneath.
async fn delete_one(
    ctx: &Ctx<'_>,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let resource = ctx.def.storage_resource();
    let target = || Target {
        group: ctx.def.group.clone(),
        resource: ctx.def.plural.clone(),
        name: name.to_string(),
    };
    let is_pod = ctx.def.group.is_empty() && ctx.def.plural == "pods";
    for _ in 0..UPDATE_ATTEMPTS {
        let stored = ctx
            .app
            .store
            .get(&resource, namespace, name)
            .ok_or_else(|| ApiError::NotFound(target()))?;
        if let Some(uid) = &opts.precondition.uid
            && *uid != stored.uid
        {
            return Err(ApiError::Conflict(
                target(),
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    stored.uid
                ),
            ));
        }
        if let Some(rv) = opts.precondition.resource_version
            && rv != stored.resource_version
        {
            return Err(ApiError::Conflict(
                target(),
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    stored.resource_version
                ),
            ));
        }
        let now = jiff::Timestamp::now().as_second();
        let key = Key {
            resource: resource.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let command = match deletion::plan(is_pod, &stored.value(), &opts.request, now) {
            deletion::DeletePlan::Unchanged => return Ok(Deleted::Marked(stored.json.clone())),
            _ if opts.dry_run => return Ok(Deleted::Removed(stored.json.clone())),
            deletion::DeletePlan::Now => Command::Delete {
                key,
                precondition: Precondition {
                    uid: Some(stored.uid.clone()),
                    resource_version: Some(stored.resource_version),
                },
            },
            deletion::DeletePlan::Mark(new) => Command::Update {
                key,
                expected_rv: stored.resource_version,
                object: Bytes::from(
                    serde_json::to_vec(&new).map_err(|e| ApiError::Internal(e.to_string()))?,
                ),
            },
        };
        let marking = matches!(command, Command::Update { .. });
        match ctx.propose(command).await? {
            CommandResult::Stored(json) if marking => return Ok(Deleted::Marked(json)),
            CommandResult::Stored(json) => return Ok(Deleted::Removed(json)),
            // Changed underneath (a finalizer added, a status written): decide again.
            CommandResult::Failed(ApplyError::Conflict | ApplyError::RvPrecondition { .. }) => {
                continue;
            }
            CommandResult::Failed(ApplyError::NotFound) => {
                return Err(ApiError::NotFound(target()));
            }
            other => return Err(apply_failure(ctx, name, other)),
        }
    }
    Err(ApiError::Conflict(target(), CONFLICT_MESSAGE.into()))
}

async fn delete(
    ctx: &Ctx<'_>,
    name: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let opts = delete_options(ctx, content_type, bytes)?;
    if ctx.def.plural == "namespaces"
        && ctx.def.group.is_empty()
        && matches!(name, "default" | "kube-system" | "kube-public")
    {
        return Err(ApiError::Forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    match delete_one(ctx, &ctx.namespace, name, &opts).await? {
        Deleted::Marked(json) => respond_object(ctx, StatusCode::OK, &json),
        Deleted::Removed(json) => {
            if matches!(ctx.def.plural.as_str(), "pods" | "namespaces") && ctx.def.group.is_empty()
            {
                return respond_object(ctx, StatusCode::OK, &json);
            }
            let uid = serde_json::from_slice::<Value>(&json)
                .ok()
                .and_then(|v| meta_str(&v, "uid").map(str::to_string))
                .unwrap_or_default();
            let mut details = json!({"name": name, "kind": ctx.def.plural, "uid": uid});
            if !ctx.def.group.is_empty() {
                details["group"] = json!(ctx.def.group);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            ))
        }
    }
}

async fn delete_collection(
    ctx: &Ctx<'_>,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let opts = delete_options(ctx, content_type, bytes)?;
    let filter = Filter::parse(ctx)?;
    ensure_fresh(ctx).await?;
    let ns = if ctx.def.namespaced && !ctx.namespace.is_empty() {
        Some(ctx.namespace.as_str())
    } else {
        None
    };
    let page = ctx
        .app
        .store
        .list(&ctx.def.storage_resource(), ns, None, 0, &|o| {
            filter.matches(o)
        });
    let mut items = Vec::new();
    for obj in &page.items {
        // Each object is deleted as its own DELETE would delete it; one that is gone or
        // replaced meanwhile is not ours to delete.
        let per_object = DeleteOptions {
            precondition: Precondition {
                uid: Some(obj.uid.clone()),
                resource_version: None,
            },
            request: opts.request.clone(),
            dry_run: opts.dry_run,
        };
        match delete_one(ctx, &obj.namespace, &obj.name, &per_object).await {
            Ok(Deleted::Removed(json) | Deleted::Marked(json)) => {
                items.push(serde_json::from_slice(&json).unwrap_or(Value::Null));
            }
            Err(ApiError::NotFound(_) | ApiError::Conflict(..)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", ctx.def.kind),
            "apiVersion": ctx.def.api_version(),
            "metadata": {"resourceVersion": ctx.app.store.revision().to_string()},
            "items": items,
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// Subresources: scale, binding, eviction

/// The Scale of an object: built-in workloads through `spec.replicas`, custom kinds through
/// their CRD's scale paths.
fn scale_view(def: &ResourceDef, obj: &Value) -> Result<Value, ApiError> {
    match def.custom.as_ref().and_then(|c| c.version.scale.as_ref()) {
        Some(paths) => crd::scale_from(obj, paths).ok_or_else(|| {
            ApiError::Internal(format!(
                "the scale paths of {} do not resolve",
                def.qualified_plural()
            ))
        }),
        None => Ok(scale::scale_of(obj)),
    }
}

fn set_replicas(def: &ResourceDef, obj: &mut Value, replicas: i64) -> Result<(), ApiError> {
    if let Some(paths) = def.custom.as_ref().and_then(|c| c.version.scale.as_ref()) {
        return crd::apply_scale(obj, replicas, paths).map_err(ApiError::Internal);
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    } else if let Some(o) = obj.as_object_mut() {
        o.insert("spec".into(), json!({"replicas": replicas}));
    }
    Ok(())
}

/// PUT or PATCH of `<workload>/scale`: the change is made to the Scale view and lands in the
/// workload's `spec.replicas`.
async fn update_scale(
    ctx: &Ctx<'_>,
    name: &str,
    put: bool,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let scale_invalid = |detail: String| ApiError::Invalid {
        kind: "Scale".into(),
        group: "autoscaling".into(),
        name: name.to_string(),
        message: format!("Scale.autoscaling \"{name}\" is invalid: {detail}"),
        causes: vec![],
    };
    let (put_body, patch) = if put {
        (Some(body::decode_object(content_type, bytes)?), None)
    } else {
        (
            None,
            Some((patch_kind(content_type)?, body::decode_json(bytes)?)),
        )
    };
    let scale_schema = schema::message_for_kind("autoscaling", "v1", "Scale");
    let written = read_modify_write(ctx, name, None, |old| {
        let current = scale_view(&ctx.def, old)?;
        let wanted = match (&put_body, &patch) {
            (Some(b), _) => b.clone(),
            (None, Some((kind, doc))) => apply_patch_doc(ctx, *kind, &current, doc, scale_schema)?,
            (None, None) => current.clone(),
        };
        let replicas = scale::requested_replicas(&wanted).map_err(scale_invalid)?;
        let expected_rv = match meta_str(&wanted, "resourceVersion") {
            Some(rv) if !rv.is_empty() && Some(rv) != meta_str(&current, "resourceVersion") => {
                Some(parse_rv(rv)?)
            }
            _ => None,
        };
        let mut new = old.clone();
        set_replicas(&ctx.def, &mut new, replicas)?;
        // Scale writes are recorded under the `scale` subresource, as upstream does.
        ctx.track(Some(old), &mut new, Some("scale"));
        Ok(Change {
            object: Cow::Owned(new),
            expected_rv,
            warnings: vec![],
            server_side: true,
            tracked: true,
        })
    })
    .await?;
    let obj: Value =
        serde_json::from_slice(&written.json).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, &scale_view(&ctx.def, &obj)?))
}

/// PUT `namespaces/<name>/finalize`: replaces `spec.finalizers`; a terminating namespace with
/// no finalizers left is removed.
async fn finalize_namespace(ctx: &Ctx<'_>, name: &str, body: Value) -> Result<Written, ApiError> {
    let finalizers = body
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let expected_rv = match meta_str(&body, "resourceVersion") {
        None | Some("") => None,
        Some(rv) => Some(parse_rv(rv)?),
    };
    read_modify_write(ctx, name, None, |old| {
        let mut new = old.clone();
        if let Some(o) = new.as_object_mut() {
            let spec = o.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.insert("finalizers".into(), finalizers.clone());
            }
        }
        ctx.track(Some(old), &mut new, Some("finalize"));
        Ok(Change {
            object: Cow::Owned(new),
            expected_rv,
            warnings: vec![],
            server_side: true,
            tracked: true,
        })
    })
    .await
}

/// POST `pods/<name>/binding`: assigns the pod to a node, once.
async fn bind(ctx: &Ctx<'_>, name: &str, binding: &Value) -> Result<Response, ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::Invalid {
            kind: "Binding".into(),
            group: String::new(),
            name: name.to_string(),
            message: format!("Binding \"{name}\" is invalid: target.name: Required value"),
            causes: vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "target.name".into(),
            }],
        })?
        .to_string();
    let annotations = binding.pointer("/metadata/annotations").cloned();
    let now = now_rfc3339();
    read_modify_write(ctx, name, Some("binding"), |old| {
        if let Some(current) = old.pointer("/spec/nodeName").and_then(Value::as_str)
            && !current.is_empty()
        {
            return Err(ApiError::Conflict(
                Target {
                    group: String::new(),
                    resource: "pods/binding".into(),
                    name: name.to_string(),
                },
                format!("pod {name} is already assigned to node \"{current}\""),
            ));
        }
        let mut new = old.clone();
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        if let Some(Value::Object(extra)) = &annotations {
            let meta = meta_mut(&mut new)?;
            let ann = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = ann.as_object_mut() {
                for (k, v) in extra {
                    a.insert(k.clone(), v.clone());
                }
            }
        }
        mark_scheduled(&mut new, &now);
        Ok(Change {
            object: Cow::Owned(new),
            expected_rv: None,
            warnings: vec![],
            server_side: true,
            // Written straight to storage, as kube-apiserver does: no managedFields entry.
            tracked: true,
        })
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// What binding does to a pod's status, as kube-apiserver's `setPodNodeAndMetadata`: the
/// `PodScheduled` condition becomes `True`, its transition time kept if it already was (1.33
/// neither copies the Binding's labels nor clears `nominatedNodeName`: both are behind gates
/// that are off or absent there).
fn mark_scheduled(pod: &mut Value, now: &str) {
    let Some(status) = pod
        .as_object_mut()
        .map(|p| p.entry("status").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(conditions) = conditions.as_array_mut() else {
        return;
    };
    let scheduled = conditions
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"));
    let since = scheduled
        .map(|i| &conditions[i])
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    let condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": since,
    });
    match scheduled {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// POST `pods/<name>/eviction`: deletes the pod with the eviction's DeleteOptions.
/// (PodDisruptionBudgets are honoured once the disruption controller exists.)
async fn evict(ctx: &Ctx<'_>, name: &str, eviction: &Value) -> Result<Response, ApiError> {
    let opts_bytes = match eviction.get("deleteOptions") {
        Some(o) if !o.is_null() => {
            serde_json::to_vec(o).map_err(|e| ApiError::Internal(e.to_string()))?
        }
        _ => Vec::new(),
    };
    let opts = delete_options(ctx, Some("application/json"), &opts_bytes)?;
    // PodDisruptionBudgets: the eviction is recorded in the budget before the pod goes.
    let pod = ctx
        .app
        .store
        .get("pods", &ctx.namespace, name)
        .ok_or_else(|| ApiError::NotFound(ctx.target(name)))?
        .value();
    let pdbs: Vec<Value> = ctx
        .app
        .store
        .list(
            "poddisruptionbudgets.policy",
            Some(&ctx.namespace),
            None,
            0,
            &|_| true,
        )
        .items
        .iter()
        .map(|o| o.value())
        .collect();
    match crate::controllers::disruption::check_eviction(&pod, &pdbs, jiff::Timestamp::now()) {
        Ok(None) => {}
        Ok(Some(pdb)) => {
            if !opts.dry_run {
                Internal::new(
                    ctx.app,
                    "policy",
                    "v1",
                    "poddisruptionbudgets",
                    &ctx.namespace,
                )?
                .update(&pdb, true)
                .await?;
            }
        }
        Err(refusal) => {
            return Err(ApiError::Status(
                StatusCode::from_u16(refusal.code()).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
                refusal.status(),
            ));
        }
    }
    delete_one(ctx, &ctx.namespace, name, &opts).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

// ---------------------------------------------------------------------------------------
// Reviews (create-only, not stored)

fn review(ctx: &Ctx<'_>, caller: &Caller, mut obj: Value) -> Result<Response, ApiError> {
    check_type(ctx, &mut obj)?;
    let identity = caller.identity.as_ref().ok_or(ApiError::Unauthorized)?;
    let status = if ctx.def.kind == "TokenReview" {
        ctx.app
            .service_account_tokens
            .token_review(&ctx.app.store, &obj)?
    } else {
        super::authz::review_status(
            &ctx.app.store,
            identity,
            &ctx.def.kind,
            &obj,
            &ctx.namespace,
        )?
    };
    if let Some(o) = obj.as_object_mut() {
        o.insert("status".into(), status);
        o.entry("metadata").or_insert_with(|| json!({}));
    }
    let mut resp = json_response(StatusCode::CREATED, &obj);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// Creates an object on the server's own behalf (bootstrap), ignoring AlreadyExists.
pub async fn ensure_exists(
    app: &Arc<ApiState>,
    group: &str,
    version: &str,
    plural: &str,
    namespace: &str,
    obj: Value,
) -> Result<(), ApiError> {
    let internal = Internal::new(app, group, version, plural, namespace)?;
    let name = meta_str(&obj, "name").unwrap_or("").to_string();
    if app
        .store
        .get(&internal.def.storage_resource(), namespace, &name)
        .is_some()
    {
        return Ok(());
    }
    match internal.create(obj).await {
        Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------
// In-process calls (controllers): the same code path as HTTP requests, as the system.

/// A write made from inside the daemon.
pub struct Internal<'a> {
    app: &'a Arc<ApiState>,
    def: Arc<ResourceDef>,
    namespace: String,
    query: Query,
}

impl<'a> Internal<'a> {
    /// Addresses `group/version/plural` in `namespace`.
    pub fn new(
        app: &'a Arc<ApiState>,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
    ) -> Result<Self, ApiError> {
        let def = app.registry.lookup(group, version, plural).ok_or_else(|| {
            ApiError::Internal(format!("{plural}.{group} is not a served resource"))
        })?;
        Ok(Internal {
            app,
            def,
            namespace: namespace.to_string(),
            query: Query::default(),
        })
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            app: self.app,
            def: self.def.clone(),
            namespace: self.namespace.clone(),
            query: &self.query,
            wanted: Wanted::Json,
            identity: None,
            manager: "vkube-controller-manager".into(),
        }
    }

    /// Creates `obj`; returns it as stored.
    pub async fn create(&self, obj: Value) -> Result<Bytes, ApiError> {
        Ok(create_object(&self.ctx(), obj, false).await?.json)
    }

    /// Replaces the object (or its status) with `obj`, whose resourceVersion is a
    /// precondition.
    pub async fn update(&self, obj: &Value, status: bool) -> Result<Bytes, ApiError> {
        let name = meta_str(obj, "name")
            .ok_or_else(|| ApiError::BadRequest("an update needs metadata.name".into()))?
            .to_string();
        let sub = status.then_some("status");
        Ok(replace_object(&self.ctx(), &name, sub, obj, vec![])
            .await?
            .json)
    }

    /// Patches object `name` with a strategic merge patch; returns it as stored.
    pub async fn patch(&self, name: &str, patch: &Value) -> Result<Bytes, ApiError> {
        Ok(
            patch_object(&self.ctx(), name, None, PatchKind::Strategic, patch)
                .await?
                .json,
        )
    }

    /// Sends a namespace's `spec.finalizers` through its `finalize` subresource.
    pub async fn finalize_namespace(&self, obj: Value) -> Result<Bytes, ApiError> {
        let name = meta_str(&obj, "name")
            .ok_or_else(|| ApiError::BadRequest("finalize needs metadata.name".into()))?
            .to_string();
        Ok(finalize_namespace(&self.ctx(), &name, obj).await?.json)
    }

    /// Binds pod `name` to `node` through the `binding` subresource.
    pub async fn bind(&self, name: &str, node: &str) -> Result<(), ApiError> {
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": node}});
        bind(&self.ctx(), name, &binding).await.map(|_| ())
    }

    /// Deletes at once (grace period 0), if the object still has `uid`.
    pub async fn delete_now(&self, name: &str, uid: Option<String>) -> Result<(), ApiError> {
        self.delete_with(name, uid, None, Some(0)).await
    }

    /// Deletes (or marks) the object, if it still has `uid`.
    pub async fn delete(
        &self,
        name: &str,
        uid: Option<String>,
        propagation: Option<&str>,
    ) -> Result<(), ApiError> {
        self.delete_with(name, uid, propagation, None).await
    }

    async fn delete_with(
        &self,
        name: &str,
        uid: Option<String>,
        propagation: Option<&str>,
        grace: Option<i64>,
    ) -> Result<(), ApiError> {
        let mut body = json!({});
        if let Some(g) = grace {
            body["gracePeriodSeconds"] = json!(g);
        }
        if let Some(uid) = uid {
            body["preconditions"] = json!({"uid": uid});
        }
        if let Some(p) = propagation {
            body["propagationPolicy"] = json!(p);
        }
        let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
        let ctx = self.ctx();
        let opts = delete_options(&ctx, Some("application/json"), &bytes)?;
        delete_one(&ctx, &self.namespace, name, &opts)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled(pod: &Value) -> Vec<&Value> {
        pod["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .filter(|c| c["type"] == "PodScheduled")
            .collect()
    }

    /// Binding turns an Unschedulable condition into a True one from now, adds one where
    /// there was none, and keeps the transition time of one that was True already.
    #[test]
    fn binding_marks_a_pod_scheduled_as_upstream_does() {
        let now = "2026-01-02T00:00:00Z";
        let mut unschedulable = json!({"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/1 nodes are available", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        mark_scheduled(&mut unschedulable, now);
        assert_eq!(
            scheduled(&unschedulable),
            [
                &json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                     "lastTransitionTime": now})
            ]
        );

        let mut bare = json!({"metadata": {"name": "p"}});
        mark_scheduled(&mut bare, now);
        assert_eq!(scheduled(&bare)[0]["lastTransitionTime"], now);

        let mut already = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        mark_scheduled(&mut already, now);
        let conds = already["status"]["conditions"]
            .as_array()
            .expect("conditions");
        assert_eq!(conds.len(), 2, "{already}");
        assert_eq!(conds[1]["lastTransitionTime"], "2026-01-01T00:00:00Z");
    }
}
