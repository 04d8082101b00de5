#!/usr/bin/env python3
"""Generate src/resources/schema/generated.rs: the schema table of vkube's built-in kinds.

Inputs (both are crates already in the local cargo registry):
  * k8s-pb 0.9.0 (prost code generated from the Kubernetes .proto files): message layout,
    proto field numbers, wire types, and the `+patchStrategy`, `+patchMergeKey`, `+listType`,
    `+listMapKey`, `+mapType`, `+structType` markers kept in the doc comments.
  * k8s-openapi 0.29.0, module v1_33: exact JSON field names (taken from the serde
    `Serialize` impls) and which fields are required (struct fields not wrapped in `Option`).

Only fields present in both are emitted, so the table describes Kubernetes 1.33 even though
k8s-pb may know newer fields (the ones left out are listed on stderr). Go's embedded structs
(`VolumeSource` in `Volume`, ...) are a message field in protobuf but inlined in JSON; they are
emitted with the INLINE flag. What neither crate says is listed below by hand: the special
types with their own JSON form (SPECIAL), definitions k8s-openapi lacks (SYNTHETIC_DEFS), and
Go pointer-ness where the protobuf decoder needs it (KEEP_EMPTY, OMIT_ZERO).

It also writes src/resources/schema/docs.rs: the description of every message and of each of its
JSON fields (what `kubectl explain` prints), taken as data from k8s-openapi's JSON schema impls
(falling back to its doc comments), deduplicated into one string table.

Usage (from the crate root):
    python3 tools/gen_schema.py [--registry DIR] [--out PATH] [--docs-out PATH] [--check]

Standard library only.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from dataclasses import dataclass, field

PB_CRATE = "k8s-pb-0.9.0"
OPENAPI_CRATE = "k8s-openapi-0.29.0"
OPENAPI_VERSION = "v1_33"

API = "io.k8s.api"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
APIEXT = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"

# Root kinds: (group, version, proto package, kinds). `<Kind>List` is added when it exists.
ROOT_KINDS = [
    ("", "v1", f"{API}.core.v1", ["Namespace", "Pod", "Service", "Endpoints", "ConfigMap",
                                  "Secret", "ServiceAccount", "Event", "Node",
                                  "PersistentVolumeClaim", "PersistentVolume", "LimitRange",
                                  "ResourceQuota", "ReplicationController", "Binding"]),
    ("apps", "v1", f"{API}.apps.v1", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet",
                                      "ControllerRevision"]),
    ("batch", "v1", f"{API}.batch.v1", ["Job", "CronJob"]),
    ("rbac.authorization.k8s.io", "v1", f"{API}.rbac.v1",
     ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]),
    ("coordination.k8s.io", "v1", f"{API}.coordination.v1", ["Lease"]),
    ("events.k8s.io", "v1", f"{API}.events.v1", ["Event"]),
    ("discovery.k8s.io", "v1", f"{API}.discovery.v1", ["EndpointSlice"]),
    ("networking.k8s.io", "v1", f"{API}.networking.v1",
     ["Ingress", "IngressClass", "NetworkPolicy"]),
    ("policy", "v1", f"{API}.policy.v1", ["PodDisruptionBudget", "Eviction"]),
    ("storage.k8s.io", "v1", f"{API}.storage.v1", ["StorageClass"]),
    ("scheduling.k8s.io", "v1", f"{API}.scheduling.v1", ["PriorityClass"]),
    ("autoscaling", "v2", f"{API}.autoscaling.v2", ["HorizontalPodAutoscaler"]),
    ("autoscaling", "v1", f"{API}.autoscaling.v1", ["Scale"]),
    ("authorization.k8s.io", "v1", f"{API}.authorization.v1",
     ["SelfSubjectAccessReview", "SubjectAccessReview", "SelfSubjectRulesReview",
      "LocalSubjectAccessReview"]),
    ("authentication.k8s.io", "v1", f"{API}.authentication.v1",
     ["TokenRequest", "TokenReview", "SelfSubjectReview"]),
    ("apiextensions.k8s.io", "v1", APIEXT, ["CustomResourceDefinition"]),
    ("meta.k8s.io", "v1", META, ["DeleteOptions", "Status", "PartialObjectMetadata"]),
]

# Messages whose JSON form is not an object with the proto message's fields.
SPECIAL = {
    f"{META}.Time": "Time",
    f"{META}.MicroTime": "MicroTime",
    f"{META}.Duration": "Duration",
    f"{META}.FieldsV1": "FieldsV1",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "RawExtension",
    f"{APIEXT}.JSON": "Json",
    f"{APIEXT}.JSONSchemaPropsOrArray": "SchemaOrArray",
    f"{APIEXT}.JSONSchemaPropsOrBool": "SchemaOrBool",
    f"{APIEXT}.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
}

# Definitions k8s-openapi does not model (beyond `<Kind>List`, synthesised from the proto):
# definition -> {JSON name: required}.
SYNTHETIC_DEFS = {
    f"{META}.PartialObjectMetadata": {"apiVersion": False, "kind": False, "metadata": False},
    # An empty Go struct; k8s-openapi models it as an arbitrary JSON value.
    f"{APIEXT}.CustomResourceSubresourceStatus": {},
}

# Pointer string fields whose empty value means something (the decoder otherwise drops
# empty optional strings, because Go writes every non-pointer string even when empty).
KEEP_EMPTY = {
    (f"{API}.core.v1.PersistentVolumeClaimSpec", "storageClassName"),
}

# Non-pointer scalar fields with `omitempty` in Go. Go's protobuf marshaller writes them even
# when zero, Go's JSON leaves them out when zero; the protobuf decoder drops their zero values
# so decoded objects match Go's JSON. Pointer fields (`replicas`, `automountServiceAccountToken`)
# must never be listed: their zero is meaningful.
# (o) = observed in kubectl 1.32 protobuf bodies written as zero and absent from the same
# object's Go JSON (`--dry-run=client -o json`); the others are from the Go struct tags.
OMIT_ZERO = {
    f"{META}.ObjectMeta": ["generation"],  # (o)
    f"{META}.Status": ["code"],
    f"{META}.StatusDetails": ["retryAfterSeconds"],
    f"{API}.core.v1.Container": ["stdin", "stdinOnce", "tty"],  # (o)
    f"{API}.core.v1.EphemeralContainerCommon": ["stdin", "stdinOnce", "tty"],
    f"{API}.core.v1.ContainerPort": ["hostPort"],  # (o)
    f"{API}.core.v1.PodSpec": ["hostNetwork", "hostPID", "hostIPC"],  # (o)
    f"{API}.core.v1.Probe": ["initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                             "successThreshold", "failureThreshold"],
    f"{API}.core.v1.VolumeMount": ["readOnly"],
    f"{API}.core.v1.ContainerStateTerminated": ["signal"],
    f"{API}.core.v1.ServiceSpec": ["healthCheckNodePort", "publishNotReadyAddresses"],  # (o)
    f"{API}.core.v1.ServicePort": ["nodePort"],  # (o)
    f"{API}.core.v1.NodeSpec": ["unschedulable"],
    f"{API}.core.v1.Event": ["count"],
    f"{API}.events.v1.Event": ["deprecatedCount"],
    f"{API}.apps.v1.DeploymentSpec": ["minReadySeconds", "paused"],  # (o)
    f"{API}.apps.v1.DeploymentStatus": ["observedGeneration", "replicas", "updatedReplicas",
                                        "readyReplicas", "availableReplicas",
                                        "unavailableReplicas"],  # (o)
    f"{API}.apps.v1.ReplicaSetSpec": ["minReadySeconds"],
    f"{API}.apps.v1.ReplicaSetStatus": ["fullyLabeledReplicas", "readyReplicas",
                                        "availableReplicas", "observedGeneration"],
    f"{API}.apps.v1.StatefulSetSpec": ["minReadySeconds"],
    f"{API}.apps.v1.StatefulSetStatus": ["observedGeneration", "readyReplicas",
                                         "currentReplicas", "updatedReplicas"],
    f"{API}.apps.v1.DaemonSetSpec": ["minReadySeconds"],
    f"{API}.apps.v1.DaemonSetStatus": ["observedGeneration", "updatedNumberScheduled",
                                       "numberAvailable", "numberUnavailable"],
    f"{API}.batch.v1.JobStatus": ["active", "succeeded", "failed"],  # (o)
    f"{API}.policy.v1.PodDisruptionBudgetStatus": ["observedGeneration"],  # (o)
    f"{API}.scheduling.v1.PriorityClass": ["globalDefault"],  # (o)
    f"{API}.networking.v1.ServiceBackendPort": ["number"],  # (o)
    f"{API}.authorization.v1.SubjectAccessReviewStatus": ["denied"],
    f"{API}.autoscaling.v1.ScaleSpec": ["replicas"],
    f"{API}.autoscaling.v2.HorizontalPodAutoscalerStatus": ["currentReplicas"],
    f"{APIEXT}.JSONSchemaProps": ["exclusiveMaximum", "exclusiveMinimum", "uniqueItems",
                                  "nullable", "x-kubernetes-embedded-resource",
                                  "x-kubernetes-int-or-string"],
    f"{APIEXT}.CustomResourceDefinitionSpec": ["preserveUnknownFields"],
    f"{APIEXT}.CustomResourceDefinitionVersion": ["deprecated"],
    f"{APIEXT}.CustomResourceColumnDefinition": ["priority"],
}

# Field flags (constants of `mod flag` in src/resources/schema/mod.rs) and message flags
# (`mod message_flag`) are referred to by name.

SCALARS = {
    "string": "String",
    "bool": "Bool",
    "int32": "Int32",
    "int64": "Int64",
    "double": "Double",
}


def fail(msg: str) -> None:
    print(f"gen_schema: error: {msg}", file=sys.stderr)
    sys.exit(1)


def norm(name: str) -> str:
    """Normalise a JSON name or a Rust field name so both spellings of one field compare equal."""
    if name.startswith("r#"):
        name = name[2:]
    return re.sub(r"[^a-z0-9]", "", name.lower())


# ---------------------------------------------------------------------------------------------
# k8s-pb


@dataclass
class PbField:
    rust_name: str
    tag: int
    wire: str            # string, bool, int32, int64, double, float, bytes, message, map
    repeated: bool
    type_ref: str | None  # resolved full proto name for messages / map message values
    map_value: str | None  # for maps: string, bytes, message
    doc: list[str]


@dataclass
class PbMessage:
    full: str  # io.k8s.api.core.v1.Pod (prost spelling of the message name)
    doc: list[str]
    fields: list[PbField] = field(default_factory=list)


def pb_package(parts: list[str]) -> str:
    top = parts[0].replace("_", "-")
    return ".".join(["io", "k8s", top] + parts[1:])


def resolve_type(type_text: str, module: list[str]) -> str:
    t = type_text.strip().rstrip(",").strip()
    t = t.replace(" ", "").replace(",>", ">")
    wrappers = ["::core::option::Option<", "::prost::alloc::vec::Vec<",
                "::prost::alloc::boxed::Box<"]
    changed = True
    while changed:
        changed = False
        for w in wrappers:
            if t.startswith(w) and t.endswith(">"):
                t = t[len(w):-1]
                changed = True
    prefix = "::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,"
    if t.startswith(prefix) and t.endswith(">"):
        t = t[len(prefix):-1]
        for w in wrappers:
            if t.startswith(w) and t.endswith(">"):
                t = t[len(w):-1]
    segs = t.split("::")
    mod = list(module)
    while segs and segs[0] == "super":
        segs.pop(0)
        mod.pop()
    if len(segs) == 1:
        return pb_package(module) + "." + segs[0]
    return pb_package(mod + segs[:-1]) + "." + segs[-1]


PROST_RE = re.compile(r"#\[prost\((.*)\)\]")


def parse_prost_attr(attr: str) -> tuple[str, bool, int, str | None]:
    m = re.search(r'tag = "(\d+)"', attr)
    if not m:
        fail(f"no tag in prost attribute {attr!r}")
    tag = int(m.group(1))
    mm = re.match(r'btree_map = "string, (\w+)"', attr)
    if mm:
        return "map", False, tag, mm.group(1)
    kind = attr.split(",")[0].strip()
    if kind.startswith("bytes"):
        kind = "bytes"
    repeated = ", repeated" in attr
    if kind not in SCALARS and kind not in ("bytes", "message"):
        fail(f"unsupported prost kind {kind!r} in {attr!r}")
    return kind, repeated, tag, None


def parse_pb_file(path: str, module: list[str], out: dict[str, PbMessage]) -> None:
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    doc: list[str] = []
    cur: PbMessage | None = None
    attr: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        i += 1
        if s.startswith("///"):
            doc.append(s[3:].strip())
            continue
        if cur is None:
            m = re.match(r"pub struct (\w+) \{(\})?$", s)
            if m:
                cur = PbMessage(full=pb_package(module) + "." + m.group(1), doc=doc)
                doc = []
                if m.group(2):
                    out[cur.full] = cur
                    cur = None
            elif s.startswith("pub enum") or (s.startswith("pub mod") and s.endswith("{")):
                fail(f"unexpected item in {path}: {s}")
            elif not s.startswith("#["):
                doc = []
            continue
        if s == "}":
            if cur.full in out:
                fail(f"duplicate message {cur.full}")
            out[cur.full] = cur
            cur = None
            doc = []
            continue
        m = PROST_RE.match(s)
        if m:
            attr = m.group(1)
            continue
        m = re.match(r"pub ((?:r#)?\w+):(.*)$", s)
        if m:
            if attr is None:
                fail(f"field without prost attribute in {path}: {s}")
            type_text = m.group(2)
            while (not type_text.rstrip().endswith(",")
                   or type_text.count("<") > type_text.count(">")):
                type_text += lines[i].strip()
                i += 1
            kind, repeated, tag, map_value = parse_prost_attr(attr)
            type_ref = None
            if kind == "message" or (kind == "map" and map_value == "message"):
                type_ref = resolve_type(type_text, module)
            cur.fields.append(PbField(m.group(1), tag, kind, repeated, type_ref, map_value, doc))
            attr = None
            doc = []
            continue
        if s.startswith("#["):
            continue
        fail(f"cannot parse line in {path}: {s}")


def load_pb(root: str) -> dict[str, PbMessage]:
    out: dict[str, PbMessage] = {}
    for path in sorted(glob.glob(os.path.join(root, "**", "mod.rs"), recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), root)
        if rel == ".":
            continue
        module = rel.split(os.sep)
        with open(path, encoding="utf-8") as fh:
            if "pub struct" not in fh.read():
                continue
        parse_pb_file(path, module, out)
    return out


# ---------------------------------------------------------------------------------------------
# k8s-openapi


@dataclass
class OaField:
    json: str
    required: bool


def load_openapi(root: str) -> tuple[dict[str, dict[str, OaField]], set[str]]:
    """Definition name -> normalised JSON name -> field; and the definitions with TypeMeta
    (`apiVersion` and `kind`, which are left out of the fields)."""
    defs: dict[str, dict[str, OaField]] = {}
    type_meta: set[str] = set()
    ser_opt = re.compile(
        r'if let Some\(value\) = &self\.((?:r#)?\w+) \{\s*'
        r'crate::serde::ser::SerializeStruct::serialize_field\(&mut state, "([^"]+)", value\)')
    ser_req = re.compile(
        r'crate::serde::ser::SerializeStruct::serialize_field\(&mut state, "([^"]+)", '
        r'&self\.((?:r#)?\w+)\)')
    for path in sorted(glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        m = re.match(r"// Generated from definition (\S+)", text)
        if not m:
            continue
        name = m.group(1)
        sm = re.search(r"\npub struct \w+ \{\n(.*?)\n\}\n", text, re.S)
        if not sm:
            continue  # newtypes (Time, Quantity, ...) and enums
        optional: dict[str, bool] = {}
        for fm in re.finditer(r"^    pub ((?:r#)?\w+): (.*),$", sm.group(1), re.M):
            optional[fm.group(1)] = fm.group(2).startswith("Option<")
        fields: dict[str, OaField] = {}
        pairs = [(a, b) for a, b in ser_opt.findall(text)] + \
                [(b, a) for a, b in ser_req.findall(text)]
        for rust, json in pairs:
            if rust not in optional:
                fail(f"{name}: serialised field {rust} not in struct")
            key = norm(json)
            if key in fields:
                fail(f"{name}: two JSON names normalise to {key}")
            fields[key] = OaField(json, not optional[rust])
        if len(fields) != len(optional):
            missing = set(optional) - {r for r, _ in pairs}
            fail(f"{name}: fields without a JSON name: {sorted(missing)}")
        if '"apiVersion", <Self as crate::Resource>::API_VERSION' in text:
            type_meta.add(name)
        defs[name] = fields
    return defs, type_meta


# ---------------------------------------------------------------------------------------------
# Join


@dataclass
class OutField:
    json: str
    tag: int
    kind: str      # Rust expression of the Kind
    flags: list[str]
    merge_key: str | None
    map_keys: list[str]


@dataclass
class OutMessage:
    name: str
    atomic: bool
    type_meta: bool
    fields: list[OutField]


def markers(doc: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in doc:
        m = re.match(r"\+(patchStrategy|patchMergeKey|listType|listMapKey|mapType|structType)"
                     r"=(\S+)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


class Generator:
    def __init__(self, pb: dict[str, PbMessage], oa: dict[str, dict[str, OaField]],
                 type_meta: set[str]):
        self.pb = pb
        self.oa = oa
        self.type_meta = type_meta
        self.pb_lower = {k.lower(): k for k in pb}
        self.oa_lower = {k.lower(): k for k in oa}
        self.index: dict[str, int] = {}
        self.order: list[str] = []
        self.dropped: list[str] = []
        self.string_lists: set[str] = set()
        self.used_overrides: set[tuple[str, str]] = set()

    def pb_name(self, full: str) -> str:
        k = self.pb_lower.get(full.lower())
        if k is None:
            fail(f"no k8s-pb message {full}")
        return k

    def oa_name(self, pb_full: str) -> str | None:
        return self.oa_lower.get(pb_full.lower())

    def is_string_list(self, pb_full: str) -> bool:
        """Go named slice types (`type ExtraValue []string`) get a wrapper message in proto."""
        msg = self.pb[pb_full]
        return (self.oa_name(pb_full) is None and len(msg.fields) == 1
                and msg.fields[0].rust_name == "items" and msg.fields[0].repeated
                and msg.fields[0].wire == "string" and msg.fields[0].tag == 1)

    def special(self, pb_full: str) -> str | None:
        oa = self.oa_name(pb_full) or pb_full
        for name, sp in SPECIAL.items():
            if name.lower() == oa.lower():
                return sp
        if self.is_string_list(pb_full):
            self.string_lists.add(pb_full)
            return "StringList"
        return None

    def visit(self, pb_full: str) -> int:
        if pb_full in self.index:
            return self.index[pb_full]
        self.index[pb_full] = len(self.order)
        self.order.append(pb_full)
        return self.index[pb_full]

    def kind_of_message(self, pb_full: str) -> str:
        sp = self.special(pb_full)
        if sp:
            return f"K::Special(S::{sp})"
        return f"K::Message({self.visit(pb_full)})"

    def build(self, roots: list[str]) -> list[OutMessage]:
        for r in roots:
            self.visit(r)
        out: list[OutMessage] = []
        i = 0
        while i < len(self.order):
            out.append(self.build_message(self.order[i]))
            i += 1
        return out

    def build_message(self, pb_full: str) -> OutMessage:
        msg = self.pb[pb_full]
        oa_full = self.oa_name(pb_full)
        if oa_full is None and pb_full.endswith("List") and \
                sorted(f.rust_name for f in msg.fields) == ["items", "metadata"]:
            # k8s-openapi models lists generically (`List<T>`): metadata + required items.
            oa_full = pb_full
            self.oa[oa_full] = {"metadata": OaField("metadata", False),
                                "items": OaField("items", True)}
            self.type_meta.add(oa_full)
            self.oa_lower[oa_full.lower()] = oa_full
        if oa_full is None:
            fail(f"no k8s-openapi definition for {pb_full}")
        oa_fields = self.oa[oa_full]
        used: set[str] = set()
        fields: list[OutField] = []
        for f in msg.fields:
            key = norm(f.rust_name)
            inline = False
            if key in oa_fields:
                json = oa_fields[key].json
                required = oa_fields[key].required
                used.add(key)
            elif f.wire == "message" and not f.repeated and self.inline_ok(f, oa_fields):
                inline = True
                json = ""
                required = False
                used |= set(self.oa[self.oa_name(f.type_ref)])
                self.visit(f.type_ref)
            else:
                self.dropped.append(f"{oa_full}.{f.rust_name}")
                continue
            fields.append(self.build_field(oa_full, f, json, required, inline))
        tm = {"apiversion", "kind"}
        if tm <= set(oa_fields) - used:
            # TypeMeta (inlined in Go, not part of the proto message).
            self.type_meta.add(oa_full)
            used |= tm
        extra = set(oa_fields) - used
        if extra:
            fail(f"{oa_full}: JSON fields without a proto field: "
                 f"{sorted(oa_fields[k].json for k in extra)}")
        atomic = "atomic" in markers(msg.doc).get("structType", [])
        return OutMessage(oa_full, atomic, oa_full in self.type_meta, fields)

    def inline_ok(self, f: PbField, oa_fields: dict[str, OaField]) -> bool:
        # A Go embedded struct (`json:",inline"`): a message field whose JSON fields appear
        # in the parent's JSON.
        if self.special(f.type_ref):
            return False
        keys = {norm(x.rust_name) for x in self.pb[f.type_ref].fields}
        sub = self.oa_name(f.type_ref)
        if sub is None:
            # Only embedded (e.g. EphemeralContainerCommon): its JSON fields are the parent's.
            common = keys & set(oa_fields)
            if not common:
                return False
            self.oa[f.type_ref] = {k: oa_fields[k] for k in common}
            self.oa_lower[f.type_ref.lower()] = f.type_ref
            return True
        keys = keys & set(self.oa[sub])
        return bool(keys) and keys <= set(oa_fields)

    def build_field(self, msg: str, f: PbField, json: str, required: bool,
                    inline: bool) -> OutField:
        mk = markers(f.doc)
        flags: list[str] = []
        if f.repeated:
            flags.append("REPEATED")
        if required:
            flags.append("REQUIRED")
        for strat in ",".join(mk.get("patchStrategy", [])).split(","):
            if strat == "merge":
                flags.append("MERGE")
            elif strat == "retainKeys":
                flags.append("RETAIN_KEYS")
            elif strat == "replace":
                flags.append("REPLACE")
            elif strat:
                fail(f"{msg}.{json}: unknown patch strategy {strat}")
        for lt in mk.get("listType", []):
            flags.append({"atomic": "LIST_ATOMIC", "set": "LIST_SET", "map": "LIST_MAP"}[lt])
        for mt in mk.get("mapType", []):
            flags.append({"atomic": "MAP_ATOMIC", "granular": "MAP_GRANULAR"}[mt])
        if inline:
            flags.append("INLINE")
        if (msg, json) in KEEP_EMPTY:
            flags.append("KEEP_EMPTY")
            self.used_overrides.add((msg, json))
        if json in OMIT_ZERO.get(msg, []):
            if f.wire not in ("bool", "int32", "int64") or f.repeated or required:
                fail(f"OMIT_ZERO {msg}.{json} is not an optional scalar")
            flags.append("OMIT_ZERO")
            self.used_overrides.add((msg, json))
        merge_key = None
        if mk.get("patchMergeKey"):
            merge_key = mk["patchMergeKey"][0]
        map_keys = mk.get("listMapKey", [])
        if f.wire == "map":
            if f.map_value == "message":
                value = self.kind_of_message(f.type_ref)
            elif f.map_value == "string":
                value = "K::String"
            elif f.map_value == "bytes":
                value = "K::Bytes"
            else:
                fail(f"{msg}.{json}: unsupported map value {f.map_value}")
            kind = f"K::Map(&{value})"
        elif f.wire == "message":
            kind = self.kind_of_message(f.type_ref)
        elif f.wire == "bytes":
            kind = "K::Bytes"
        else:
            kind = f"K::{SCALARS[f.wire]}"
        return OutField(json, f.tag, kind, flags, merge_key, map_keys)


def rust_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(msgs: list[OutMessage], kinds: list[tuple[str, str, str, int]],
           schema_props: int | None) -> str:
    out: list[str] = []
    w = out.append
    w("// @generated by tools/gen_schema.py from the k8s-pb 0.9.0 and k8s-openapi 0.29.0 (v1_33)")
    w("// crates in the local cargo registry. Do not edit by hand; regenerate from the crate root:")
    w("//     python3 tools/gen_schema.py")
    w("// One entry per message reachable from the built-in kinds; fields are in declaration")
    w("// (Go struct) order and refer to other messages by their index in MESSAGES.")
    w("")
    w("use super::Kind as K;")
    w("use super::Special as S;")
    w("use super::flag::*;")
    w("use super::message_flag::*;")
    w("use super::{FieldDef, KindDef, MessageDef};")
    w("")
    w("const fn f(json: &'static str, tag: u32, kind: K, flags: u16) -> FieldDef {")
    w("    FieldDef { json, tag, kind, flags, merge_key: None, list_map_keys: &[] }")
    w("}")
    w("")
    w("const fn fk(json: &'static str, tag: u32, kind: K, flags: u16, merge_key: Option<&'static str>, list_map_keys: &'static [&'static str]) -> FieldDef {")
    w("    FieldDef { json, tag, kind, flags, merge_key, list_map_keys }")
    w("}")
    w("")
    if schema_props is not None:
        w("/// Index of apiextensions.k8s.io/v1 JSONSchemaProps.")
        w(f"pub(super) const JSON_SCHEMA_PROPS: u16 = {schema_props};")
        w("")
    w(f"pub(super) static MESSAGES: [MessageDef; {len(msgs)}] = [")
    for i, m in enumerate(msgs):
        w(f"    // {i}")
        flags = [n for n, on in (("ATOMIC", m.atomic), ("TYPE_META", m.type_meta)) if on]
        w(f"    MessageDef {{ name: {rust_str(m.name)}, flags: {'|'.join(flags) or '0'}, fields: &[")
        for fd in m.fields:
            flags = "|".join(fd.flags) if fd.flags else "0"
            if fd.merge_key is None and not fd.map_keys:
                w(f"        f({rust_str(fd.json)}, {fd.tag}, {fd.kind}, {flags}),")
            else:
                mk = f"Some({rust_str(fd.merge_key)})" if fd.merge_key else "None"
                keys = ", ".join(rust_str(k) for k in fd.map_keys)
                w(f"        fk({rust_str(fd.json)}, {fd.tag}, {fd.kind}, {flags}, {mk}, &[{keys}]),")
        w("    ] },")
    w("];")
    w("")
    w("/// (group, version, kind) of every top-level kind, sorted, with its message index.")
    w(f"pub(super) static KINDS: [KindDef; {len(kinds)}] = [")
    for g, v, k, idx in kinds:
        w(f"    KindDef {{ group: {rust_str(g)}, version: {rust_str(v)}, kind: {rust_str(k)}, message: {idx} }},")
    w("];")
    w("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Descriptions (docs.rs)

# Definitions outside the message table whose descriptions the OpenAPI documents need.
# (meta/v1 Duration is not a definition: upstream inlines it as a plain string.)
EXTRA_DOC_DEFS = sorted(set(SPECIAL) - {f"{META}.Duration"} | {
    f"{META}.Patch",
    f"{META}.WatchEvent",
})
GENERIC_LIST = "io.k8s.List"

RUST_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def rust_unquote(body: str) -> str:
    """The value of a Rust string literal's body (between the quotes)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in RUST_ESCAPES:
            out.append(RUST_ESCAPES[e])
            i += 2
        elif e == "u":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3:end], 16)))
            i = end + 1
        else:
            fail(f"unsupported escape \\{e} in a string literal")
    return "".join(out)


def doc_comment_text(lines: list[str]) -> str:
    """A rustdoc comment back to the description it was generated from (k8s-openapi escapes
    Markdown's `[`, `]`, `<`, `>` and `\\`)."""
    text = "\n".join(lines)
    return re.sub(r"\\([\\<>\[\]])", r"\1", text)


@dataclass
class Docs:
    description: str
    fields: dict[str, str]


STR_LIT = r'"((?:[^"\\]|\\.)*)"'


def load_docs(root: str) -> dict[str, Docs]:
    out: dict[str, Docs] = {}
    top_re = re.compile(r"^ {12}\"description\": " + STR_LIT + r",$")
    prop_re = re.compile(r"^ {16}\"([^\"]+)\": ")
    desc_re = re.compile(r"^ {20}\"description\": " + STR_LIT + r",$")
    ins_re = re.compile(r"^ {20}schema_obj\.ensure_object\(\)\.insert\(\"description\"\.into\(\), "
                        + STR_LIT + r"\.into\(\)\);$")
    for path in sorted(glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        m = re.match(r"// Generated from definition (\S+)", text)
        if not m:
            continue
        name = m.group(1)
        doc = Docs("", {})
        # Doc comments: the fallback (generic List, newtypes without a schema description).
        lines = text.split("\n")
        pending: list[str] = []
        in_struct = False
        for line in lines:
            s = line.strip()
            if s.startswith("///"):
                pending.append(s[4:] if s.startswith("/// ") else s[3:])
                continue
            if re.match(r"pub (struct|enum) ", s) and not doc.description and not in_struct:
                doc.description = doc_comment_text(pending)
                in_struct = s.endswith("{")
            elif in_struct and s == "}":
                in_struct = False
            elif in_struct:
                fm = re.match(r"pub ((?:r#)?\w+):", s)
                if fm and pending:
                    doc.fields["rust:" + norm(fm.group(1))] = doc_comment_text(pending)
            if not s.startswith("#["):
                pending = []
        # The JSON schema impl: exact descriptions, keyed by JSON name.
        start = text.find("fn json_schema(")
        if start >= 0:
            prop = None
            top_done = False
            for line in text[start:].split("\n")[2:]:
                if line == "    }":
                    break
                tm = top_re.match(line)
                if tm and not top_done:
                    doc.description = rust_unquote(tm.group(1))
                    top_done = True
                    continue
                if re.match(r"^ {12}\"", line):
                    top_done = True
                pm = prop_re.match(line)
                if pm:
                    prop = pm.group(1)
                    continue
                dm = desc_re.match(line) or ins_re.match(line)
                if dm and prop is not None and prop not in doc.fields:
                    doc.fields[prop] = rust_unquote(dm.group(1))
        out[name] = doc
    return out


def json_fields(msg: OutMessage, by_name: dict[str, OutMessage]) -> list[str]:
    """The JSON names of a message's fields, looking through inline fields."""
    out: list[str] = []
    for f in msg.fields:
        if "INLINE" in f.flags:
            inner = re.match(r"K::Message\((\d+)\)", f.kind)
            if not inner:
                fail(f"{msg.name}: inline field is not a message")
            out += json_fields(by_name[f"#{inner.group(1)}"], by_name)
        else:
            out.append(f.json)
    return out


def render_docs(msgs: list[OutMessage], docs: dict[str, Docs]) -> tuple[str, int]:
    texts: dict[str, int] = {"": 0}

    def t(s: str) -> int:
        if s not in texts:
            texts[s] = len(texts)
        return texts[s]

    by_name = {f"#{i}": m for i, m in enumerate(msgs)}
    type_meta_docs = docs[f"{API}.core.v1.Pod"].fields
    generic = docs[GENERIC_LIST]
    rows: list[str] = []
    for i, m in enumerate(msgs):
        d = docs.get(m.name)
        if d is None and m.name.endswith("List"):
            d = Docs(generic.description,
                     {"items": generic.fields.get("rust:items", ""),
                      "metadata": generic.fields.get("rust:metadata", "")})
        if d is None:
            d = Docs("", {})
        names = json_fields(m, by_name)
        if m.type_meta:
            names = ["apiVersion", "kind"] + names
        fields = []
        for n in names:
            desc = d.fields.get(n)
            if desc is None and n in ("apiVersion", "kind"):
                desc = type_meta_docs[n]
            if desc is None:
                desc = d.fields.get("rust:" + norm(n), "")
            fields.append(f"({rust_str(n)}, {t(desc)})")
        rows.append(f"    // {i} {m.name}")
        rows.append(f"    MessageDoc {{ description: {t(d.description)}, fields: &[{', '.join(fields)}] }},")
    defs = []
    for name in EXTRA_DOC_DEFS:
        d = docs.get(name)
        if d is None:
            fail(f"no k8s-openapi definition {name} for its description")
        defs.append(f"    ({rust_str(name)}, {t(d.description)}),")
    out: list[str] = []
    w = out.append
    w("// @generated by tools/gen_schema.py from the k8s-openapi 0.29.0 (v1_33) crate in the local")
    w("// cargo registry. Do not edit by hand; regenerate from the crate root:")
    w("//     python3 tools/gen_schema.py")
    w("// The descriptions (API documentation, as kube-apiserver publishes them in OpenAPI) of every")
    w("// message of generated.rs (same index) and of its JSON fields, as indices into TEXT.")
    w("")
    w("use super::MessageDoc;")
    w("")
    w("/// Every distinct description; 0 is the empty one.")
    w(f"pub(super) static TEXT: [&str; {len(texts)}] = [")
    for s in texts:
        w(f"    {rust_text(s)},")
    w("];")
    w("")
    w(f"pub(super) static MESSAGE_DOCS: [MessageDoc; {len(msgs)}] = [")
    out += rows
    w("];")
    w("")
    w("/// Descriptions of definitions outside the message table (special types, ...), sorted.")
    w(f"pub(super) static DEFINITION_DOCS: [(&str, u16); {len(defs)}] = [")
    out += defs
    w("];")
    w("")
    if len(texts) > 0xFFFF:
        fail("too many descriptions for u16 indices")
    return "\n".join(out), len(texts)


def rust_text(s: str) -> str:
    out = ['"']
    for c in s:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{{{ord(c):x}}}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--registry", default=None,
                    help="cargo registry src dir holding the two crates "
                         "(default: ~/.cargo/registry/src/*)")
    ap.add_argument("--out", default=os.path.join(here, "src", "resources", "schema",
                                                  "generated.rs"))
    ap.add_argument("--docs-out", default=os.path.join(here, "src", "resources", "schema",
                                                       "docs.rs"))
    ap.add_argument("--check", action="store_true",
                    help="fail if an output file is not up to date instead of writing it")
    args = ap.parse_args()

    def find(crate: str) -> str:
        pats = ([os.path.join(args.registry, crate)] if args.registry else
                glob.glob(os.path.join(os.path.expanduser("~"), ".cargo", "registry", "src",
                                       "*", crate)))
        pats = [p for p in pats if os.path.isdir(p)]
        if not pats:
            fail(f"crate {crate} not found in the cargo registry; "
                 "run `cargo fetch` in a crate depending on it")
        return pats[0]

    pb = load_pb(os.path.join(find(PB_CRATE), "src"))
    oa_root = os.path.join(find(OPENAPI_CRATE), "src", OPENAPI_VERSION)
    oa, type_meta = load_openapi(oa_root)
    for name, fields in SYNTHETIC_DEFS.items():
        if name in oa:
            fail(f"{name} is now in k8s-openapi; drop it from SYNTHETIC_DEFS")
        oa[name] = {norm(k): OaField(k, req) for k, req in fields.items()}
        if "apiversion" in oa[name]:
            type_meta.add(name)
            del oa[name]["apiversion"]
            del oa[name]["kind"]
    gen = Generator(pb, oa, type_meta)

    roots: list[tuple[str, str, str, str]] = []
    for group, version, package, names in ROOT_KINDS:
        for name in names:
            roots.append((group, version, name, gen.pb_name(f"{package}.{name}")))
            lst = f"{package}.{name}List".lower()
            if lst in gen.pb_lower:
                roots.append((group, version, f"{name}List", gen.pb_lower[lst]))
    msgs = gen.build([r[3] for r in roots])
    kinds = sorted((g, v, k, gen.index[m]) for g, v, k, m in roots)
    wanted = set(KEEP_EMPTY) | {(m, f) for m, fs in OMIT_ZERO.items() for f in fs}
    if wanted - gen.used_overrides:
        fail(f"KEEP_EMPTY/OMIT_ZERO entries matching no field: {sorted(wanted - gen.used_overrides)}")
    sp = gen.index.get(gen.pb_name(f"{APIEXT}.JSONSchemaProps"))
    text = render(msgs, kinds, sp)
    docs_text, ntexts = render_docs(msgs, load_docs(oa_root))

    if args.check:
        for path, want in ((args.out, text), (args.docs_out, docs_text)):
            with open(path, encoding="utf-8") as fh:
                if fh.read() != want:
                    fail(f"{path} is out of date; run tools/gen_schema.py")
        return
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    with open(args.docs_out, "w", encoding="utf-8") as fh:
        fh.write(docs_text)
    print(f"gen_schema: wrote {args.docs_out}: {ntexts} descriptions, {len(docs_text)} bytes",
          file=sys.stderr)
    nfields = sum(len(m.fields) for m in msgs)
    print(f"gen_schema: wrote {args.out}: {len(msgs)} messages, {nfields} fields, "
          f"{len(kinds)} kinds, {len(text)} bytes", file=sys.stderr)
    if gen.dropped:
        print(f"gen_schema: {len(gen.dropped)} proto fields not in k8s-openapi "
              f"{OPENAPI_VERSION} left out:", file=sys.stderr)
        for d in gen.dropped:
            print(f"    {d}", file=sys.stderr)
    if gen.string_lists:
        print(f"gen_schema: string-list wrappers: {sorted(gen.string_lists)}", file=sys.stderr)


if __name__ == "__main__":
    main()
