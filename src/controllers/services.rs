//! Services: ClusterIP and NodePort allocation (used by the API layer when a Service is created
//! or updated) and the Endpoints / EndpointSlice reconcile core (used by the endpoints
//! controller), plus the `default/kubernetes` Service that points at the API server.
//!
//! Allocation is a pure function of the addresses and ports already in use, so any replica's
//! API layer computes the same proposal; the store's conflict check decides between two
//! creates that proposed the same value (the loser re-reads and allocates again). Dynamic
//! allocation prefers the upper part of each range and leaves the lower band to users who ask
//! for a specific value, as upstream's allocators do since 1.27 (KEP-3070, KEP-3668); upstream
//! picks at random inside a band, vkube takes the lowest free value so replicas agree.
//!
//! Only single-stack IPv4 clusters are modelled: `ipFamilies` is `["IPv4"]` except for
//! headless services without a selector, which upstream marks `RequireDualStack` with both
//! families even on single-stack clusters.
//!
//! The endpoints core mirrors kube-controller-manager 1.33: the Endpoints controller (ready and
//! not-ready addresses, subsets repacked by port set) and the EndpointSlice controller
//! (`ready`/`serving`/`terminating` conditions, one slice per port set and 100 endpoints,
//! updates only when something changed, a placeholder slice when there are no endpoints).
//! Services without a selector are left alone (their endpoints are written by users).
//! Not modelled: topology (`zone`, `hints`), `endpoints.kubernetes.io/last-change-trigger-time`,
//! truncation of Endpoints beyond 1000 addresses (`endpoints.kubernetes.io/over-capacity`), and
//! IPv6 slices.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::controllers::action::{Action, ENDPOINT_SLICES, ENDPOINTS};

/// kube-apiserver's default `--service-cluster-ip-range`.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// kube-apiserver's default `--service-node-port-range`.
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";
/// Label naming the Service an EndpointSlice belongs to.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages an EndpointSlice.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The value of [`LABEL_MANAGED_BY`] on slices this controller manages.
pub const ENDPOINT_SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
/// Label set on Endpoints/EndpointSlices of headless services.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// Label telling the mirroring controller to leave an Endpoints object alone.
pub const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// The most endpoints one EndpointSlice holds (`--max-endpoints-per-slice` default).
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Why an allocation failed; the messages are upstream's allocator errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// Nothing is free.
    #[error("range is full")]
    Full,
    /// The requested IP is in use.
    #[error("provided IP is already allocated")]
    IpAllocated,
    /// The requested IP is outside the service CIDR (or is its network/broadcast address).
    #[error("provided IP is not in the valid range. The range of valid IPs is {range}")]
    IpNotInRange {
        /// The service CIDR.
        range: String,
    },
    /// The requested port is in use.
    #[error("provided port is already allocated")]
    PortAllocated,
    /// The requested port is outside the node port range.
    #[error("provided port is not in the valid range. The range of valid ports is {range}")]
    PortNotInRange {
        /// The node port range, `30000-32767`.
        range: String,
    },
    /// The configured service CIDR is unusable.
    #[error(
        "invalid service CIDR {0:?}: expected an IPv4 network such as 10.96.0.0/12 with a prefix length from 12 to 30"
    )]
    InvalidCidr(String),
    /// The configured node port range is unusable.
    #[error(
        "invalid node port range {0:?}: expected two ports \"first-last\" with first <= last, such as 30000-32767"
    )]
    InvalidPortRange(String),
}

/// Upstream's split of a range into a lower band for static and an upper band for dynamic
/// allocation: `min(max(min_band, size / step), max_band)`, none for tiny ranges.
fn band_offset(size: u64, min_band: u64, max_band: u64, step: u64) -> u64 {
    if size <= min_band {
        0
    } else {
        (size / step).clamp(min_band, max_band)
    }
}

/// Allocates ClusterIPs out of the service CIDR.
///
/// Offsets count from the first usable address (network + 1); the network and broadcast
/// addresses are never handed out, and offset 0 (the first usable address) is reserved for the
/// `kubernetes` Service, so [`IpAllocator::allocate`] never returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllocator {
    network: u32,
    prefix: u8,
    cidr: String,
}

impl IpAllocator {
    /// An allocator over `cidr` (`a.b.c.d/len`, len 12..=30; host bits are cleared).
    pub fn new(cidr: &str) -> Result<IpAllocator, AllocError> {
        let bad = || AllocError::InvalidCidr(cidr.to_string());
        let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if !(12..=30).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        let network = u32::from(addr) & mask;
        Ok(IpAllocator {
            network,
            prefix,
            cidr: format!("{}/{prefix}", Ipv4Addr::from(network)),
        })
    }

    /// The CIDR, normalized (`10.96.0.0/12`).
    pub fn cidr(&self) -> &str {
        &self.cidr
    }

    /// Usable addresses (all but network and broadcast).
    fn size(&self) -> u64 {
        (1u64 << (32 - u32::from(self.prefix))) - 2
    }

    fn at(&self, offset: u64) -> Ipv4Addr {
        // offset < size <= 2^20, so this stays inside the network.
        Ipv4Addr::from(self.network.wrapping_add(1).wrapping_add(offset as u32))
    }

    fn offset_of(&self, ip: Ipv4Addr) -> Option<u64> {
        let v = u64::from(u32::from(ip));
        let first = u64::from(self.network) + 1;
        (v >= first && v - first < self.size()).then(|| v - first)
    }

    /// The address of the `kubernetes` Service: the first usable address.
    pub fn kubernetes_ip(&self) -> Ipv4Addr {
        self.at(0)
    }

    /// Whether `ip` can be allocated at all (inside the CIDR, not network or broadcast).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.offset_of(ip).is_some()
    }

    /// The lowest free address of the upper (dynamic) band, else of the lower band; never the
    /// `kubernetes` address. `None` when the range is full.
    pub fn allocate(&self, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let size = self.size();
        let band = band_offset(size + 2, 16, 256, 16).min(size);
        (band..size)
            .chain(1..band)
            .filter(|&o| o != 0)
            .map(|o| self.at(o))
            .find(|ip| !used.contains(ip))
    }

    /// Checks that the user-chosen `ip` can be taken.
    pub fn allocate_specific(
        &self,
        ip: Ipv4Addr,
        used: &HashSet<Ipv4Addr>,
    ) -> Result<(), AllocError> {
        if !self.contains(ip) {
            return Err(AllocError::IpNotInRange {
                range: self.cidr.clone(),
            });
        }
        if used.contains(&ip) {
            return Err(AllocError::IpAllocated);
        }
        Ok(())
    }
}

/// Allocates node ports out of the node port range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAllocator {
    first: u16,
    last: u16,
}

impl PortAllocator {
    /// An allocator over `range` (`first-last`, inclusive).
    pub fn new(range: &str) -> Result<PortAllocator, AllocError> {
        let bad = || AllocError::InvalidPortRange(range.to_string());
        let (a, b) = range.split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first == 0 || first > last {
            return Err(bad());
        }
        Ok(PortAllocator { first, last })
    }

    /// The range as upstream prints it (`30000-32767`).
    pub fn range(&self) -> String {
        format!("{}-{}", self.first, self.last)
    }

    /// Whether `port` is inside the range.
    pub fn contains(&self, port: i64) -> bool {
        (i64::from(self.first)..=i64::from(self.last)).contains(&port)
    }

    /// The lowest free port of the upper (dynamic) band, else of the lower band.
    pub fn allocate_node_port(&self, used: &HashSet<u16>) -> Option<u16> {
        let size = u64::from(self.last - self.first) + 1;
        let band = band_offset(size, 16, 128, 32);
        (band..size)
            .chain(0..band)
            .filter_map(|o| u16::try_from(u64::from(self.first) + o).ok())
            .find(|p| !used.contains(p))
    }

    /// Checks that the user-chosen `port` can be taken.
    pub fn allocate_specific(&self, port: i64, used: &HashSet<u16>) -> Result<(), AllocError> {
        if !self.contains(port) {
            return Err(AllocError::PortNotInRange {
                range: self.range(),
            });
        }
        match u16::try_from(port) {
            Ok(p) if used.contains(&p) => Err(AllocError::PortAllocated),
            _ => Ok(()),
        }
    }
}

/// The ClusterIPs and node ports every stored Service holds: the `used` sets for allocation.
pub fn used_allocations(services: &[Value]) -> (HashSet<Ipv4Addr>, HashSet<u16>) {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for svc in services {
        let (i, p) = allocations_of(svc);
        ips.extend(i);
        ports.extend(p);
    }
    (ips, ports)
}

fn allocations_of(svc: &Value) -> (HashSet<Ipv4Addr>, HashSet<u16>) {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    let Some(spec) = svc.get("spec").and_then(Value::as_object) else {
        return (ips, ports);
    };
    for ip in cluster_ips(spec) {
        if let Ok(ip) = ip.parse::<Ipv4Addr>() {
            ips.insert(ip);
        }
    }
    for p in arr(spec, "ports") {
        if let Some(np) = p.get("nodePort").and_then(Value::as_u64)
            && let Ok(np) = u16::try_from(np)
            && np != 0
        {
            ports.insert(np);
        }
    }
    if let Some(hc) = spec.get("healthCheckNodePort").and_then(Value::as_u64)
        && let Ok(hc) = u16::try_from(hc)
        && hc != 0
    {
        ports.insert(hc);
    }
    (ips, ports)
}

/// Both allocators, as the API layer holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAllocators {
    /// ClusterIPs.
    pub ips: IpAllocator,
    /// Node ports.
    pub ports: PortAllocator,
}

impl ServiceAllocators {
    /// Allocators over `cidr` and `node_ports`.
    pub fn new(cidr: &str, node_ports: &str) -> Result<ServiceAllocators, AllocError> {
        Ok(ServiceAllocators {
            ips: IpAllocator::new(cidr)?,
            ports: PortAllocator::new(node_ports)?,
        })
    }

    /// Fills what kube-apiserver allocates on create: `clusterIP`/`clusterIPs`,
    /// `ipFamilyPolicy`/`ipFamilies`, `nodePort`s (NodePort, and LoadBalancer unless
    /// `allocateLoadBalancerNodePorts: false`) and `healthCheckNodePort` (LoadBalancer with
    /// `externalTrafficPolicy: Local`). `clusterIP: None` stays headless; ExternalName gets
    /// nothing. Errors are upstream's field errors (`spec.clusterIPs: Invalid value: …`); the
    /// "range is full" ones (`failed to allocate a serviceIP: range is full`, `failed to
    /// allocate a nodePort: range is full`) are internal errors (500) upstream.
    pub fn prepare_service_create(
        &self,
        svc: &mut Value,
        used_ips: &HashSet<Ipv4Addr>,
        used_ports: &HashSet<u16>,
    ) -> Result<(), Vec<String>> {
        let spec = spec_mut(svc)?;
        let mut errs = Vec::new();
        if needs_cluster_ip(spec) {
            self.assign_cluster_ips(spec, Some(used_ips), &mut errs);
        } else {
            spec.remove("ipFamilies");
            spec.remove("ipFamilyPolicy");
        }
        if errs.is_empty() {
            self.assign_node_ports(spec, used_ports, &mut errs);
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// What kube-apiserver does on update: fields tied to a type the Service left are dropped
    /// when unchanged, allocated values the user omitted are kept from `old` (`clusterIP`,
    /// `clusterIPs`, node ports matched by port name, `healthCheckNodePort`), a changed
    /// `clusterIP` is refused (immutable), and what the new type needs and lacks is allocated.
    /// `used_*` may include `old`'s own allocations; they are not counted against it.
    pub fn prepare_service_update(
        &self,
        old: &Value,
        new: &mut Value,
        used_ips: &HashSet<Ipv4Addr>,
        used_ports: &HashSet<u16>,
    ) -> Result<(), Vec<String>> {
        let empty = Map::new();
        let old_spec = old.get("spec").and_then(Value::as_object).unwrap_or(&empty);
        let (own_ips, own_ports) = allocations_of(old);
        let used_ips: HashSet<Ipv4Addr> = used_ips.difference(&own_ips).copied().collect();
        let used_ports: HashSet<u16> = used_ports.difference(&own_ports).copied().collect();
        let spec = spec_mut(new)?;
        drop_type_dependent_fields(old_spec, spec);
        let mut errs = Vec::new();
        if needs_cluster_ip(old_spec) && needs_cluster_ip(spec) {
            let old_ip = str_at(old_spec, "clusterIP");
            let new_ip = cluster_ips(spec).first().cloned().unwrap_or_default();
            if !old_ip.is_empty() && !new_ip.is_empty() && new_ip != old_ip {
                errs.push(format!(
                    "spec.clusterIPs[0]: Invalid value: {}: may not change once set",
                    json_list(&cluster_ips(spec))
                ));
                errs.push(format!(
                    "spec.clusterIP: Invalid value: {}: field is immutable",
                    Value::from(new_ip.as_str())
                ));
                return Err(errs);
            }
        }
        patch_allocated_values(old_spec, spec);

        if needs_cluster_ip(spec) {
            if str_at(spec, "clusterIP").is_empty() || !needs_cluster_ip(old_spec) {
                self.assign_cluster_ips(spec, Some(&used_ips), &mut errs);
            } else {
                // Already allocated: only (re)derive the family fields.
                self.assign_cluster_ips(spec, None, &mut errs);
            }
        } else {
            spec.remove("ipFamilies");
            spec.remove("ipFamilyPolicy");
        }
        if errs.is_empty() {
            self.assign_node_ports(spec, &used_ports, &mut errs);
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// `clusterIP`/`clusterIPs` ↔ each other, family policy and families, then the address:
    /// allocated when empty, checked against `used` when chosen by the user, kept as it is
    /// when `used` is `None` (an existing allocation whose families are re-derived).
    fn assign_cluster_ips(
        &self,
        spec: &mut Map<String, Value>,
        used: Option<&HashSet<Ipv4Addr>>,
        errs: &mut Vec<String>,
    ) {
        let ip = str_at(spec, "clusterIP").to_string();
        let mut ips = cluster_ips_field(spec);
        if !ip.is_empty() && ips.is_empty() {
            ips = vec![ip.clone()];
        }
        let ip = if ip.is_empty() {
            ips.first().cloned().unwrap_or_default()
        } else {
            ip
        };
        if ips.first().is_some_and(|first| *first != ip) {
            errs.push(format!(
                "spec.clusterIPs: Invalid value: {}: first value must match `clusterIP`",
                json_list(&ips)
            ));
            return;
        }
        let headless = ip == "None";
        let selectorless = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        let mut families: Vec<String> = arr(spec, "ipFamilies")
            .iter()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        let policy = match spec.get("ipFamilyPolicy").and_then(Value::as_str) {
            Some(p) if !p.is_empty() => p.to_string(),
            _ if headless && selectorless => "RequireDualStack".to_string(),
            _ if families.len() > 1 || ips.len() > 1 => "RequireDualStack".to_string(),
            _ => "SingleStack".to_string(),
        };
        if policy == "SingleStack" {
            if ips.len() > 1 {
                errs.push(format!(
                    "spec.ipFamilyPolicy: Invalid value: {}: must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
                    Value::from(policy.as_str())
                ));
            }
            if families.len() > 1 {
                errs.push(format!(
                    "spec.ipFamilyPolicy: Invalid value: {}: must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
                    Value::from(policy.as_str())
                ));
            }
        }
        for (i, one) in ips.iter().enumerate() {
            if one == "None" {
                break;
            }
            let family = if one.parse::<Ipv4Addr>().is_ok() {
                "IPv4"
            } else if one.parse::<std::net::Ipv6Addr>().is_ok() {
                "IPv6"
            } else {
                errs.push(format!(
                    "spec.clusterIPs[{i}]: Invalid value: {}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    Value::from(one.as_str())
                ));
                continue;
            };
            if i >= families.len() {
                if family == "IPv4" {
                    families.push(family.to_string());
                } else {
                    errs.push(format!(
                        "spec.clusterIPs[{i}]: Invalid value: {}: {family} is not configured on this cluster",
                        json_list(&ips)
                    ));
                }
            }
        }
        if !errs.is_empty() {
            return;
        }
        if headless && selectorless {
            if families.is_empty() {
                families.push("IPv4".into());
            }
            if families.len() < 2 && policy != "SingleStack" {
                let other = if families[0] == "IPv4" {
                    "IPv6"
                } else {
                    "IPv4"
                };
                families.push(other.into());
            }
            set_cluster_ips(spec, "None", &policy, &families);
            return;
        }
        if policy == "RequireDualStack" {
            errs.push(format!(
                "spec.ipFamilyPolicy: Invalid value: {}: this cluster is not configured for dual-stack services",
                Value::from(policy.as_str())
            ));
        }
        for (i, f) in families.iter().enumerate() {
            if f != "IPv4" {
                errs.push(format!(
                    "spec.ipFamilies[{i}]: Invalid value: {}: not configured on this cluster",
                    Value::from(f.as_str())
                ));
            }
        }
        if !errs.is_empty() {
            return;
        }
        if families.is_empty() {
            families.push("IPv4".into());
        }
        if headless {
            set_cluster_ips(spec, "None", &policy, &families);
            return;
        }
        let Some(used) = used else {
            set_cluster_ips(spec, &ip, &policy, &families);
            return;
        };
        if ip.is_empty() {
            match self.ips.allocate(used) {
                Some(new_ip) => {
                    set_cluster_ips(spec, &new_ip.to_string(), &policy, &families);
                }
                None => errs.push(format!(
                    "failed to allocate a serviceIP: {}",
                    AllocError::Full
                )),
            }
            return;
        }
        // Parsed above as IPv4 (anything else was an error).
        let Ok(parsed) = ip.parse::<Ipv4Addr>() else {
            return;
        };
        match self.ips.allocate_specific(parsed, used) {
            Ok(()) => set_cluster_ips(spec, &ip, &policy, &families),
            Err(e) => errs.push(format!(
                "spec.clusterIPs: Invalid value: {}: failed to allocate IP {ip}: {e}",
                json_list(&ips)
            )),
        }
    }

    /// Node ports for NodePort/LoadBalancer services; a port number shared by several entries
    /// (e.g. TCP and UDP) shares one node port, as upstream does.
    fn assign_node_ports(
        &self,
        spec: &mut Map<String, Value>,
        used: &HashSet<u16>,
        errs: &mut Vec<String>,
    ) {
        let allocate = needs_node_ports(spec);
        let mut taken = used.clone();
        let requested: Vec<(i64, i64)> = arr(spec, "ports")
            .iter()
            .map(|p| (int_at(p, "port"), int_at(p, "nodePort")))
            .collect();
        let mut by_port: HashMap<i64, i64> = HashMap::new();
        let mut assigned: Vec<Option<i64>> = vec![None; requested.len()];
        for (i, &(port, node_port)) in requested.iter().enumerate() {
            if node_port == 0 && !allocate {
                continue;
            }
            if let Some(&shared) = by_port.get(&port) {
                if node_port == 0 {
                    assigned[i] = Some(shared);
                } else if node_port != shared {
                    match self.ports.allocate_specific(node_port, &taken) {
                        Ok(()) => {
                            take(&mut taken, node_port);
                        }
                        Err(e) => errs.push(node_port_error(i, node_port, &e)),
                    }
                }
                continue;
            }
            let wanted = if node_port != 0 {
                node_port
            } else {
                requested
                    .iter()
                    .find(|(p, np)| *p == port && *np != 0)
                    .map_or(0, |(_, np)| *np)
            };
            if wanted != 0 {
                match self.ports.allocate_specific(wanted, &taken) {
                    Ok(()) => {
                        take(&mut taken, wanted);
                        by_port.insert(port, wanted);
                        assigned[i] = Some(wanted);
                    }
                    Err(e) => errs.push(node_port_error(i, wanted, &e)),
                }
            } else {
                match self.ports.allocate_node_port(&taken) {
                    Some(p) => {
                        taken.insert(p);
                        by_port.insert(port, i64::from(p));
                        assigned[i] = Some(i64::from(p));
                    }
                    None => {
                        errs.push(format!(
                            "failed to allocate a nodePort: {}",
                            AllocError::Full
                        ));
                        return;
                    }
                }
            }
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for (p, np) in ports.iter_mut().zip(&assigned) {
                if let (Some(p), Some(np)) = (p.as_object_mut(), np) {
                    p.insert("nodePort".into(), json!(np));
                }
            }
        }
        if needs_health_check_port(spec) {
            let hc = int_at_map(spec, "healthCheckNodePort");
            if hc == 0 {
                match self.ports.allocate_node_port(&taken) {
                    Some(p) => {
                        spec.insert("healthCheckNodePort".into(), json!(p));
                    }
                    None => {
                        errs.push(format!(
                            "failed to allocate a nodePort: {}",
                            AllocError::Full
                        ));
                    }
                }
            } else if let Err(e) = self.ports.allocate_specific(hc, &taken) {
                errs.push(format!(
                    "spec.healthCheckNodePort: Invalid value: {hc}: failed to allocate requested HealthCheck NodePort {hc}: {e}"
                ));
            }
        }
    }
}

fn take(taken: &mut HashSet<u16>, port: i64) {
    if let Ok(p) = u16::try_from(port) {
        taken.insert(p);
    }
}

fn node_port_error(i: usize, port: i64, e: &AllocError) -> String {
    format!("spec.ports[{i}].nodePort: Invalid value: {port}: {e}")
}

fn set_cluster_ips(spec: &mut Map<String, Value>, ip: &str, policy: &str, families: &[String]) {
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    spec.insert("ipFamilies".into(), json!(families));
    spec.insert("ipFamilyPolicy".into(), json!(policy));
}

fn spec_mut(svc: &mut Value) -> Result<&mut Map<String, Value>, Vec<String>> {
    let not_object = || vec!["a Service must be a JSON object".to_string()];
    let obj = svc.as_object_mut().ok_or_else(not_object)?;
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    if spec.is_null() {
        *spec = json!({});
    }
    spec.as_object_mut()
        .ok_or_else(|| vec!["spec: Invalid value: must be an object".to_string()])
}

fn service_type(spec: &Map<String, Value>) -> &str {
    match str_at(spec, "type") {
        "" => "ClusterIP",
        t => t,
    }
}

fn needs_cluster_ip(spec: &Map<String, Value>) -> bool {
    service_type(spec) != "ExternalName"
}

fn needs_node_ports(spec: &Map<String, Value>) -> bool {
    match service_type(spec) {
        "NodePort" => true,
        "LoadBalancer" => spec
            .get("allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

fn has_node_ports(spec: &Map<String, Value>) -> bool {
    matches!(service_type(spec), "NodePort" | "LoadBalancer")
}

fn needs_health_check_port(spec: &Map<String, Value>) -> bool {
    service_type(spec) == "LoadBalancer" && str_at(spec, "externalTrafficPolicy") == "Local"
}

/// Upstream's `dropTypeDependentFields`: values of a type the Service left, when unchanged.
fn drop_type_dependent_fields(old: &Map<String, Value>, new: &mut Map<String, Value>) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if cluster_ips(old) == cluster_ips(new) {
            new.remove("clusterIP");
            new.remove("clusterIPs");
        }
        if old.get("ipFamilies") == new.get("ipFamilies") {
            new.remove("ipFamilies");
        }
        if old.get("ipFamilyPolicy") == new.get("ipFamilyPolicy") {
            new.remove("ipFamilyPolicy");
        }
    }
    if has_node_ports(old) && !has_node_ports(new) {
        let node_ports = |s: &Map<String, Value>| -> Vec<i64> {
            arr(s, "ports")
                .iter()
                .map(|p| int_at(p, "nodePort"))
                .collect()
        };
        if node_ports(old) == node_ports(new)
            && let Some(ports) = new.get_mut("ports").and_then(Value::as_array_mut)
        {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
    if needs_health_check_port(old)
        && !needs_health_check_port(new)
        && int_at_map(old, "healthCheckNodePort") == int_at_map(new, "healthCheckNodePort")
    {
        new.remove("healthCheckNodePort");
    }
    if service_type(new) != "LoadBalancer" {
        new.remove("allocateLoadBalancerNodePorts");
    }
}

/// Upstream's `patchAllocatedValues`: what the user omitted on update is kept from `old`.
fn patch_allocated_values(old: &Map<String, Value>, new: &mut Map<String, Value>) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if str_at(new, "clusterIP").is_empty()
            && let Some(ip) = old.get("clusterIP")
        {
            new.insert("clusterIP".into(), ip.clone());
        }
        if cluster_ips_field(new).is_empty()
            && !cluster_ips_field(old).is_empty()
            && let Some(ips) = old.get("clusterIPs")
        {
            new.insert("clusterIPs".into(), ips.clone());
        }
    }
    if has_node_ports(old) && has_node_ports(new) {
        let used_by = |s: &Map<String, Value>| -> HashSet<i64> {
            arr(s, "ports")
                .iter()
                .map(|p| int_at(p, "nodePort"))
                .filter(|n| *n != 0)
                .collect()
        };
        let in_both: HashSet<i64> = used_by(old).intersection(&used_by(new)).copied().collect();
        let by_name: HashMap<String, i64> = arr(old, "ports")
            .iter()
            .map(|p| (str_at_v(p, "name").to_string(), int_at(p, "nodePort")))
            .collect();
        if let Some(ports) = new.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if int_at(p, "nodePort") != 0 {
                    continue;
                }
                let old_np = by_name.get(str_at_v(p, "name")).copied().unwrap_or(0);
                if old_np != 0
                    && !in_both.contains(&old_np)
                    && let Some(p) = p.as_object_mut()
                {
                    p.insert("nodePort".into(), json!(old_np));
                }
            }
        }
    }
    if needs_health_check_port(old)
        && needs_health_check_port(new)
        && int_at_map(new, "healthCheckNodePort") == 0
        && let Some(hc) = old.get("healthCheckNodePort")
    {
        new.insert("healthCheckNodePort".into(), hc.clone());
    }
}

// ---------------------------------------------------------------------------
// Endpoints and EndpointSlices
// ---------------------------------------------------------------------------

/// What the endpoints controllers want for `service`, given the pods of its namespace (others
/// are ignored), its current Endpoints and the EndpointSlices labelled with its name.
///
/// Returns nothing for a Service without a selector. Endpoints are created or updated only
/// when their subsets or labels differ; slices are kept when equal, updated in place when
/// their content changed (reusing slices of the same port set first, then any slice owned by
/// this Service), created with `generateName: <service>-` when more are needed, and deleted
/// when surplus or owned by an earlier Service of the same name.
pub fn endpoints_for(
    service: &Value,
    pods: &[Value],
    existing_endpoints: Option<&Value>,
    existing_slices: &[Value],
) -> Vec<Action> {
    let Some(selector) = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    let namespace = meta_str(service, "namespace");
    let selected: Vec<&Value> = pods
        .iter()
        .filter(|p| meta_str(p, "namespace") == namespace)
        .filter(|p| {
            let labels = p.pointer("/metadata/labels").and_then(Value::as_object);
            selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .collect();
    let mut actions = Vec::new();
    if let Some(a) = endpoints_action(service, &selected, existing_endpoints) {
        actions.push(a);
    }
    actions.extend(slice_actions(service, &selected, existing_slices));
    actions
}

/// The Endpoints object of a deleted Service, which carries no ownerReference, is deleted by
/// name.
pub fn endpoints_for_deleted(namespace: &str, name: &str) -> Action {
    Action::Delete {
        kind: ENDPOINTS,
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: None,
        propagation: None,
    }
}

/// The `default/kubernetes` Service (at `cluster_ip`, normally [`IpAllocator::kubernetes_ip`])
/// and its Endpoints pointing at the API server, as kube-apiserver maintains them.
pub fn kubernetes_service(cluster_ip: Ipv4Addr, api_ip: Ipv4Addr, api_port: u16) -> (Value, Value) {
    let ip = cluster_ip.to_string();
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": api_port}],
            "clusterIP": ip,
            "clusterIPs": [ip],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    });
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {LABEL_SKIP_MIRROR: "true"},
        },
        "subsets": [{
            "addresses": [{"ip": api_ip.to_string()}],
            "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
        }],
    });
    (service, endpoints)
}

/// The `default/kubernetes` EndpointSlice kube-apiserver keeps beside the Endpoints.
pub fn kubernetes_endpoint_slice(api_ip: Ipv4Addr, api_port: u16) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {LABEL_SERVICE_NAME: "kubernetes"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [api_ip.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
    })
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| str_at_v(c, "type") == "Ready" && str_at_v(c, "status") == "True")
}

fn pod_terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

fn pod_terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The pod's IPv4 address (`status.podIPs`, else `status.podIP`).
fn pod_ipv4(pod: &Value) -> Option<String> {
    let listed = pod
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("ip").and_then(Value::as_str));
    let single = pod.pointer("/status/podIP").and_then(Value::as_str);
    listed
        .chain(single)
        .find(|ip| ip.parse::<Ipv4Addr>().is_ok())
        .map(str::to_string)
}

/// Upstream's `ShouldPodBeInEndpoints`.
fn include_pod(pod: &Value, include_terminating: bool) -> bool {
    !pod_terminal(pod) && pod_ipv4(pod).is_some() && (include_terminating || !pod_terminating(pod))
}

fn hostname_for(pod: &Value, service: &Value) -> Option<String> {
    let hostname = pod.pointer("/spec/hostname").and_then(Value::as_str)?;
    let subdomain = pod.pointer("/spec/subdomain").and_then(Value::as_str);
    (!hostname.is_empty()
        && subdomain == Some(meta_str(service, "name"))
        && meta_str(pod, "namespace") == meta_str(service, "namespace"))
    .then(|| hostname.to_string())
}

fn protocol_of(v: &Value) -> &str {
    match str_at_v(v, "protocol") {
        "" => "TCP",
        p => p,
    }
}

/// Upstream's `FindPort`: the container port a service port reaches on `pod`; a named
/// `targetPort` is looked up among the ports of containers and of restartable (sidecar) init
/// containers with the same protocol.
fn find_port(pod: &Value, service_port: &Value) -> Option<i64> {
    match service_port.get("targetPort") {
        Some(Value::String(name)) => {
            let proto = protocol_of(service_port);
            let containers = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            let sidecars = pod
                .pointer("/spec/initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| str_at_v(c, "restartPolicy") == "Always");
            containers
                .chain(sidecars)
                .flat_map(|c| {
                    c.get("ports")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
                .find(|p| str_at_v(p, "name") == name && protocol_of(p) == proto)
                .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
        }
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n != 0) => n.as_i64(),
        _ => service_port.get("port").and_then(Value::as_i64),
    }
}

fn service_ports(service: &Value) -> &[Value] {
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn target_ref(pod: &Value) -> Value {
    json!({
        "kind": "Pod",
        "namespace": meta_str(pod, "namespace"),
        "name": meta_str(pod, "name"),
        "uid": meta_str(pod, "uid"),
    })
}

fn service_labels(service: &Value) -> Map<String, Value> {
    service
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn is_headless(service: &Value) -> bool {
    matches!(
        service.pointer("/spec/clusterIP").and_then(Value::as_str),
        None | Some("" | "None")
    )
}

fn endpoints_action(service: &Value, pods: &[&Value], existing: Option<&Value>) -> Option<Action> {
    let publish_not_ready = service
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ports = service_ports(service);
    let headless_without_ports = ports.is_empty()
        && service.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
    // port set (as a sorted key) → (ports, ready addresses, not-ready addresses)
    type Group = (Vec<Value>, Vec<Value>, Vec<Value>);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for pod in pods {
        if !include_pod(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = pod_ipv4(pod) else { continue };
        let mut addr = Map::new();
        addr.insert("ip".into(), json!(ip));
        if let Some(h) = hostname_for(pod, service) {
            addr.insert("hostname".into(), json!(h));
        }
        if let Some(node) = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            addr.insert("nodeName".into(), json!(node));
        }
        addr.insert("targetRef".into(), target_ref(pod));
        let mut pod_ports: Vec<Value> = Vec::new();
        for sp in ports {
            let Some(num) = find_port(pod, sp) else {
                continue;
            };
            let mut p = Map::new();
            let name = str_at_v(sp, "name");
            if !name.is_empty() {
                p.insert("name".into(), json!(name));
            }
            p.insert("port".into(), json!(num));
            p.insert("protocol".into(), json!(protocol_of(sp)));
            if let Some(app) = sp.get("appProtocol").filter(|v| v.is_string()) {
                p.insert("appProtocol".into(), app.clone());
            }
            pod_ports.push(Value::Object(p));
        }
        if pod_ports.is_empty() && !headless_without_ports {
            continue;
        }
        pod_ports.sort_by_key(port_key);
        let key = pod_ports.iter().map(port_key).collect::<Vec<_>>().join(",");
        let group = groups
            .entry(key)
            .or_insert_with(|| (pod_ports, Vec::new(), Vec::new()));
        if publish_not_ready || pod_ready(pod) {
            group.1.push(Value::Object(addr));
        } else {
            group.2.push(Value::Object(addr));
        }
    }
    let subsets: Vec<Value> = groups
        .into_values()
        .map(|(ports, mut ready, mut not_ready)| {
            ready.sort_by_key(address_key);
            not_ready.sort_by_key(address_key);
            let mut s = Map::new();
            if !ready.is_empty() {
                s.insert("addresses".into(), Value::Array(ready));
            }
            if !not_ready.is_empty() {
                s.insert("notReadyAddresses".into(), Value::Array(not_ready));
            }
            if !ports.is_empty() {
                s.insert("ports".into(), Value::Array(ports));
            }
            Value::Object(s)
        })
        .collect();
    let mut labels = service_labels(service);
    if is_headless(service) {
        labels.insert(LABEL_HEADLESS.into(), json!(""));
    } else {
        labels.remove(LABEL_HEADLESS);
    }
    let namespace = meta_str(service, "namespace").to_string();
    match existing {
        None => {
            let mut obj = json!({
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": meta_str(service, "name"), "namespace": namespace, "labels": labels},
            });
            if !subsets.is_empty() {
                obj["subsets"] = Value::Array(subsets);
            }
            Some(Action::Create {
                kind: ENDPOINTS,
                namespace,
                object: obj,
            })
        }
        Some(current) => {
            let current_subsets = normalized_subsets(current.get("subsets"));
            let current_labels = current
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if current_subsets == normalized_subsets(Some(&Value::Array(subsets.clone())))
                && current_labels == labels
            {
                return None;
            }
            let mut obj = current.clone();
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("labels".into(), Value::Object(labels));
            }
            if let Some(o) = obj.as_object_mut() {
                if subsets.is_empty() {
                    o.remove("subsets");
                } else {
                    o.insert("subsets".into(), Value::Array(subsets));
                }
            }
            Some(Action::Update {
                kind: ENDPOINTS,
                namespace,
                object: obj,
            })
        }
    }
}

/// Subsets compared without order and without targetRef resourceVersions.
fn normalized_subsets(subsets: Option<&Value>) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>, Vec<String>)> = subsets
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            let mut ports: Vec<String> = s
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(port_key)
                .collect();
            ports.sort();
            let addrs = |field: &str| -> Vec<String> {
                let mut v: Vec<String> = s
                    .get(field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        let mut a = a.clone();
                        if let Some(t) = a.get_mut("targetRef").and_then(Value::as_object_mut) {
                            t.remove("resourceVersion");
                        }
                        canonical(&a)
                    })
                    .collect();
                v.sort();
                v
            };
            (
                ports.join(","),
                addrs("addresses"),
                addrs("notReadyAddresses"),
            )
        })
        .collect();
    out.sort();
    out
}

fn port_key(p: &Value) -> String {
    format!(
        "{}/{}/{}/{}",
        str_at_v(p, "name"),
        int_at(p, "port"),
        protocol_of(p),
        str_at_v(p, "appProtocol")
    )
}

fn address_key(a: &Value) -> (String, String) {
    (
        str_at_v(a, "ip").to_string(),
        a.pointer("/targetRef/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    )
}

/// JSON with object keys sorted, for order-insensitive comparison.
fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                let mut out = Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// One EndpointSlice's worth of content.
#[derive(Debug, Clone)]
struct DesiredSlice {
    ports: Vec<Value>,
    endpoints: Vec<Value>,
}

fn slice_labels(service: &Value) -> Map<String, Value> {
    let mut labels = Map::new();
    let mut sorted: Vec<(String, Value)> = service_labels(service)
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                LABEL_SERVICE_NAME | LABEL_MANAGED_BY | LABEL_HEADLESS
            )
        })
        .collect();
    if is_headless(service) {
        sorted.push((LABEL_HEADLESS.into(), json!("")));
    }
    sorted.push((LABEL_MANAGED_BY.into(), json!(ENDPOINT_SLICE_CONTROLLER)));
    sorted.push((LABEL_SERVICE_NAME.into(), json!(meta_str(service, "name"))));
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in sorted {
        labels.insert(k, v);
    }
    labels
}

fn owner_reference(service: &Value) -> Value {
    json!([{
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta_str(service, "name"),
        "uid": meta_str(service, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

fn desired_slices(service: &Value, pods: &[&Value]) -> Vec<DesiredSlice> {
    let publish_not_ready = service
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ports = service_ports(service);
    // port-set key → (ports in service order, endpoints)
    type Group = (Vec<Value>, Vec<(String, Value)>);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for pod in pods {
        if !include_pod(pod, true) {
            continue;
        }
        let Some(ip) = pod_ipv4(pod) else { continue };
        let serving = pod_ready(pod);
        let terminating = pod_terminating(pod);
        // Never ready while terminating, unless publishNotReadyAddresses.
        let ready = publish_not_ready || (serving && !terminating);
        let mut ep = Map::new();
        ep.insert("addresses".into(), json!([ip]));
        ep.insert(
            "conditions".into(),
            json!({"ready": ready, "serving": serving, "terminating": terminating}),
        );
        if let Some(h) = hostname_for(pod, service) {
            ep.insert("hostname".into(), json!(h));
        }
        ep.insert("targetRef".into(), target_ref(pod));
        if let Some(node) = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            ep.insert("nodeName".into(), json!(node));
        }
        let mut pod_ports = Vec::new();
        for sp in ports {
            let Some(num) = find_port(pod, sp) else {
                continue;
            };
            let mut p = Map::new();
            p.insert("name".into(), json!(str_at_v(sp, "name")));
            p.insert("port".into(), json!(num));
            p.insert("protocol".into(), json!(protocol_of(sp)));
            if let Some(app) = sp.get("appProtocol").filter(|v| v.is_string()) {
                p.insert("appProtocol".into(), app.clone());
            }
            pod_ports.push(Value::Object(p));
        }
        let key = pod_ports.iter().map(port_key).collect::<Vec<_>>().join(",");
        let sort_key = format!("{ip}/{}", meta_str(pod, "name"));
        groups
            .entry(key)
            .or_insert_with(|| (pod_ports, Vec::new()))
            .1
            .push((sort_key, Value::Object(ep)));
    }
    let mut out = Vec::new();
    for (_, (ports, mut eps)) in groups {
        eps.sort_by(|a, b| a.0.cmp(&b.0));
        let eps: Vec<Value> = eps.into_iter().map(|(_, e)| e).collect();
        for chunk in eps.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.push(DesiredSlice {
                ports: ports.clone(),
                endpoints: chunk.to_vec(),
            });
        }
    }
    if out.is_empty() {
        out.push(DesiredSlice {
            ports: Vec::new(),
            endpoints: Vec::new(),
        });
    }
    out
}

fn slice_endpoints_key(endpoints: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = endpoints
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(t) = e.get_mut("targetRef").and_then(Value::as_object_mut) {
                t.remove("resourceVersion");
            }
            canonical(&e)
        })
        .collect();
    v.sort();
    v
}

fn slice_ports_key(ports: &[Value]) -> Vec<String> {
    ports.iter().map(canonical).collect()
}

fn arr_of<'v>(v: &'v Value, field: &str) -> &'v [Value] {
    v.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn slice_actions(service: &Value, pods: &[&Value], existing: &[Value]) -> Vec<Action> {
    let namespace = meta_str(service, "namespace").to_string();
    let name = meta_str(service, "name");
    let uid = meta_str(service, "uid");
    let labels = slice_labels(service);
    let owners = owner_reference(service);
    let ours: Vec<&Value> = existing
        .iter()
        .filter(|s| meta_str(s, "namespace") == namespace)
        .filter(|s| {
            let l = s.pointer("/metadata/labels");
            l.and_then(|l| l.get(LABEL_SERVICE_NAME))
                .and_then(Value::as_str)
                == Some(name)
                && l.and_then(|l| l.get(LABEL_MANAGED_BY))
                    .and_then(Value::as_str)
                    == Some(ENDPOINT_SLICE_CONTROLLER)
        })
        .collect();
    let mut actions = Vec::new();
    let mut reusable: Vec<&Value> = Vec::new();
    for s in ours {
        let owned = arr_of(s.get("metadata").unwrap_or(&Value::Null), "ownerReferences")
            .iter()
            .any(|o| str_at_v(o, "uid") == uid && !uid.is_empty());
        if owned && str_at_v(s, "addressType") == "IPv4" {
            reusable.push(s);
        } else {
            actions.push(delete_slice(&namespace, s));
        }
    }
    let desired = desired_slices(service, pods);
    let mut unmatched: Vec<DesiredSlice> = Vec::new();
    // 1. Unchanged slices stay.
    for d in desired {
        let ports = slice_ports_key(&d.ports);
        let eps = slice_endpoints_key(&d.endpoints);
        let same = reusable.iter().position(|s| {
            slice_ports_key(arr_of(s, "ports")) == ports
                && slice_endpoints_key(arr_of(s, "endpoints")) == eps
                && s.pointer("/metadata/labels").and_then(Value::as_object) == Some(&labels)
                && s.pointer("/metadata/ownerReferences") == Some(&owners)
        });
        match same {
            Some(i) => {
                reusable.remove(i);
            }
            None => unmatched.push(d),
        }
    }
    // 2. Changed slices are updated in place, same port set first, then any reusable slice.
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut leftover = Vec::new();
    for d in unmatched {
        let ports = slice_ports_key(&d.ports);
        match reusable
            .iter()
            .position(|s| slice_ports_key(arr_of(s, "ports")) == ports)
        {
            Some(i) => updates.push(updated_slice(reusable.remove(i), &d, &labels, &owners)),
            None => leftover.push(d),
        }
    }
    for d in leftover {
        if reusable.is_empty() {
            creates.push(new_slice(service, &d, &labels, &owners));
        } else {
            updates.push(updated_slice(reusable.remove(0), &d, &labels, &owners));
        }
    }
    let mut out: Vec<Action> = creates
        .into_iter()
        .map(|object| Action::Create {
            kind: ENDPOINT_SLICES,
            namespace: namespace.clone(),
            object,
        })
        .collect();
    out.extend(updates.into_iter().map(|object| Action::Update {
        kind: ENDPOINT_SLICES,
        namespace: namespace.clone(),
        object,
    }));
    out.extend(actions);
    out.extend(reusable.into_iter().map(|s| delete_slice(&namespace, s)));
    out
}

fn delete_slice(namespace: &str, slice: &Value) -> Action {
    Action::Delete {
        kind: ENDPOINT_SLICES,
        namespace: namespace.to_string(),
        name: meta_str(slice, "name").to_string(),
        uid: Some(meta_str(slice, "uid").to_string()).filter(|u| !u.is_empty()),
        propagation: None,
    }
}

fn new_slice(
    service: &Value,
    d: &DesiredSlice,
    labels: &Map<String, Value>,
    owners: &Value,
) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": format!("{}-", meta_str(service, "name")),
            "namespace": meta_str(service, "namespace"),
            "labels": labels,
            "ownerReferences": owners,
        },
        "addressType": "IPv4",
        "endpoints": d.endpoints,
        "ports": d.ports,
    })
}

fn updated_slice(
    current: &Value,
    d: &DesiredSlice,
    labels: &Map<String, Value>,
    owners: &Value,
) -> Value {
    let mut obj = current.clone();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("labels".into(), Value::Object(labels.clone()));
        m.insert("ownerReferences".into(), owners.clone());
    }
    if let Some(o) = obj.as_object_mut() {
        o.insert("addressType".into(), json!("IPv4"));
        o.insert("endpoints".into(), Value::Array(d.endpoints.clone()));
        o.insert("ports".into(), Value::Array(d.ports.clone()));
    }
    obj
}

// ---------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------

fn meta_str<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn str_at<'v>(m: &'v Map<String, Value>, field: &str) -> &'v str {
    m.get(field).and_then(Value::as_str).unwrap_or("")
}

fn str_at_v<'v>(v: &'v Value, field: &str) -> &'v str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

fn int_at(v: &Value, field: &str) -> i64 {
    v.get(field).and_then(Value::as_i64).unwrap_or(0)
}

fn int_at_map(m: &Map<String, Value>, field: &str) -> i64 {
    m.get(field).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'v>(m: &'v Map<String, Value>, field: &str) -> &'v [Value] {
    m.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn cluster_ips_field(spec: &Map<String, Value>) -> Vec<String> {
    arr(spec, "clusterIPs")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .filter(|s| !s.is_empty())
        .collect()
}

/// `clusterIPs`, else `[clusterIP]`.
fn cluster_ips(spec: &Map<String, Value>) -> Vec<String> {
    let ips = cluster_ips_field(spec);
    if !ips.is_empty() {
        return ips;
    }
    match str_at(spec, "clusterIP") {
        "" => Vec::new(),
        ip => vec![ip.to_string()],
    }
}

fn json_list(items: &[String]) -> String {
    Value::from(items.to_vec()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (&'static str, Value, Result<Value, Vec<&'static str>>);

    fn allocs() -> ServiceAllocators {
        ServiceAllocators::new(DEFAULT_SERVICE_CIDR, DEFAULT_NODE_PORT_RANGE).unwrap()
    }

    fn ips(list: &[&str]) -> HashSet<Ipv4Addr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ip_allocator_ranges_and_exhaustion() {
        let a = IpAllocator::new("10.96.0.0/12").unwrap();
        assert_eq!(a.kubernetes_ip(), Ipv4Addr::new(10, 96, 0, 1));
        // The dynamic band starts 256 addresses in.
        assert_eq!(
            a.allocate(&HashSet::new()),
            Some(Ipv4Addr::new(10, 96, 1, 1))
        );
        assert_eq!(
            a.allocate(&ips(&["10.96.1.1"])),
            Some(Ipv4Addr::new(10, 96, 1, 2))
        );
        for bad in [
            "10.96.0.0",
            "10.96.0.0/8",
            "10.96.0.0/31",
            "x/12",
            "10.96.0.0/ab",
        ] {
            assert!(IpAllocator::new(bad).is_err(), "{bad}");
        }
        // A /29 has 6 usable addresses; the first is the kubernetes Service's.
        let small = IpAllocator::new("10.0.0.0/29").unwrap();
        let mut used = HashSet::new();
        let mut got = Vec::new();
        while let Some(ip) = small.allocate(&used) {
            used.insert(ip);
            got.push(ip.to_string());
        }
        assert_eq!(
            got,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        // Deterministic: the same used set gives the same answer.
        used.remove(&Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(small.allocate(&used), Some(Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(small.allocate(&used), Some(Ipv4Addr::new(10, 0, 0, 4)));

        let range = "The range of valid IPs is 10.0.0.0/29";
        let cases: &[(&str, &[&str], Result<(), String>)] = &[
            ("10.0.0.3", &[], Ok(())),
            ("10.0.0.1", &[], Ok(())),
            (
                "10.0.0.3",
                &["10.0.0.3"],
                Err("provided IP is already allocated".into()),
            ),
            (
                "10.0.0.0",
                &[],
                Err(format!("provided IP is not in the valid range. {range}")),
            ),
            (
                "10.0.0.7",
                &[],
                Err(format!("provided IP is not in the valid range. {range}")),
            ),
            (
                "10.0.1.3",
                &[],
                Err(format!("provided IP is not in the valid range. {range}")),
            ),
        ];
        for (ip, used, want) in cases {
            let got = small
                .allocate_specific(ip.parse().unwrap(), &ips(used))
                .map_err(|e| e.to_string());
            assert_eq!(&got, want, "{ip}");
        }
    }

    #[test]
    fn port_allocator_ranges_and_exhaustion() {
        let p = PortAllocator::new(DEFAULT_NODE_PORT_RANGE).unwrap();
        assert_eq!(p.allocate_node_port(&HashSet::new()), Some(30086));
        assert_eq!(p.allocate_node_port(&HashSet::from([30086])), Some(30087));
        let small = PortAllocator::new("30000-30002").unwrap();
        let mut used = HashSet::new();
        while let Some(port) = small.allocate_node_port(&used) {
            used.insert(port);
        }
        assert_eq!(used, HashSet::from([30000, 30001, 30002]));
        let cases: &[(i64, &[u16], Result<(), &str>)] = &[
            (30001, &[], Ok(())),
            (30001, &[30001], Err("provided port is already allocated")),
            (
                80,
                &[],
                Err(
                    "provided port is not in the valid range. The range of valid ports is 30000-30002",
                ),
            ),
            (
                70000,
                &[],
                Err(
                    "provided port is not in the valid range. The range of valid ports is 30000-30002",
                ),
            ),
        ];
        for (port, used, want) in cases {
            let used: HashSet<u16> = used.iter().copied().collect();
            let got = small
                .allocate_specific(*port, &used)
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{port}");
        }
        for bad in ["30000", "32767-30000", "0-5", "a-b"] {
            assert!(PortAllocator::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prepare_create_table() {
        let used_ips = ips(&["10.96.0.1", "10.96.0.5"]);
        let used_ports: HashSet<u16> = HashSet::from([30090]);
        let cases: Vec<Case> = vec![
            (
                "allocates the lowest free dynamic address",
                json!({"spec": {"ports": [{"port": 80}], "selector": {"app": "a"}}}),
                Ok(
                    json!({"clusterIP": "10.96.1.1", "clusterIPs": ["10.96.1.1"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
                ),
            ),
            (
                "specific free address",
                json!({"spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80}]}}),
                Ok(
                    json!({"clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
                ),
            ),
            (
                "specific address in use",
                json!({"spec": {"clusterIPs": ["10.96.0.5"], "ports": [{"port": 80}]}}),
                Err(vec![
                    "spec.clusterIPs: Invalid value: [\"10.96.0.5\"]: failed to allocate IP 10.96.0.5: provided IP is already allocated",
                ]),
            ),
            (
                "specific address out of range",
                json!({"spec": {"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}}),
                Err(vec![
                    "spec.clusterIPs: Invalid value: [\"10.0.0.5\"]: failed to allocate IP 10.0.0.5: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
                ]),
            ),
            (
                "headless with selector",
                json!({"spec": {"clusterIP": "None", "selector": {"app": "a"}}}),
                Ok(
                    json!({"clusterIP": "None", "clusterIPs": ["None"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
                ),
            ),
            (
                "headless without selector",
                json!({"spec": {"clusterIP": "None"}}),
                Ok(
                    json!({"clusterIP": "None", "clusterIPs": ["None"], "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"}),
                ),
            ),
            (
                "ExternalName gets nothing",
                json!({"spec": {"type": "ExternalName", "externalName": "example.com", "ipFamilyPolicy": "SingleStack"}}),
                Ok(json!({})),
            ),
            (
                "dual stack demanded",
                json!({"spec": {"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}}),
                Err(vec![
                    "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services",
                ]),
            ),
            (
                "IPv6 family",
                json!({"spec": {"ipFamilies": ["IPv6"], "ports": [{"port": 80}]}}),
                Err(vec![
                    "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster",
                ]),
            ),
            (
                "IPv6 address",
                json!({"spec": {"clusterIP": "fd00::1", "ports": [{"port": 80}]}}),
                Err(vec![
                    "spec.clusterIPs[0]: Invalid value: [\"fd00::1\"]: IPv6 is not configured on this cluster",
                ]),
            ),
            (
                "node ports, TCP and UDP of one port share",
                json!({"spec": {"type": "NodePort", "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    {"name": "web", "port": 80, "nodePort": 30001}]}}),
                Ok(json!({"ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30086},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30086},
                    {"name": "web", "port": 80, "nodePort": 30001}]})),
            ),
            (
                "node port outside the range",
                json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}}),
                Err(vec![
                    "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
                ]),
            ),
            (
                "node port taken",
                json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30090}]}}),
                Err(vec![
                    "spec.ports[0].nodePort: Invalid value: 30090: provided port is already allocated",
                ]),
            ),
            (
                "load balancer without node ports, with a health check port",
                json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}}),
                Ok(json!({"ports": [{"port": 80}], "healthCheckNodePort": 30086})),
            ),
        ];
        for (name, mut svc, want) in cases {
            let got = allocs().prepare_service_create(&mut svc, &used_ips, &used_ports);
            match want {
                Ok(fields) => {
                    assert_eq!(got, Ok(()), "{name}");
                    for (k, v) in fields.as_object().unwrap() {
                        assert_eq!(&svc["spec"][k], v, "{name}: {k}");
                    }
                    if name.starts_with("ExternalName") {
                        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                            assert!(svc["spec"].get(k).is_none(), "{name}: {k}");
                        }
                    }
                }
                Err(msgs) => assert_eq!(
                    got,
                    Err(msgs.into_iter().map(str::to_string).collect()),
                    "{name}"
                ),
            }
        }
        // Exhaustion.
        let tiny = ServiceAllocators::new("10.0.0.0/30", "30000-30000").unwrap();
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        let used = ips(&["10.0.0.2"]);
        assert_eq!(
            tiny.prepare_service_create(&mut svc, &used, &HashSet::new()),
            Err(vec![
                "failed to allocate a serviceIP: range is full".to_string()
            ])
        );
        let mut svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"name": "b", "port": 81}]}});
        assert_eq!(
            tiny.prepare_service_create(&mut svc, &HashSet::new(), &HashSet::new()),
            Err(vec![
                "failed to allocate a nodePort: range is full".to_string()
            ])
        );
    }

    #[test]
    fn prepare_update_table() {
        let a = allocs();
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.1.1", "clusterIPs": ["10.96.1.1"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "a", "port": 80, "nodePort": 30100}, {"name": "b", "port": 81, "nodePort": 30101}]}});
        let (used_ips, used_ports) = used_allocations(std::slice::from_ref(&old));

        // Omitted allocated values are kept; a new port gets a fresh node port.
        let mut new = json!({"spec": {"type": "NodePort", "ports": [
            {"name": "b", "port": 81}, {"name": "a", "port": 80}, {"name": "c", "port": 82}]}});
        assert_eq!(
            a.prepare_service_update(&old, &mut new, &used_ips, &used_ports),
            Ok(())
        );
        assert_eq!(new["spec"]["clusterIP"], "10.96.1.1");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.1.1"]));
        let nps: Vec<i64> = new["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["nodePort"].as_i64().unwrap())
            .collect();
        assert_eq!(nps, [30101, 30100, 30086]);

        // The cluster IP is immutable.
        let mut new = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.1.9", "ports": [{"name": "a", "port": 80}]}});
        assert_eq!(
            a.prepare_service_update(&old, &mut new, &used_ips, &used_ports),
            Err(vec![
                "spec.clusterIPs[0]: Invalid value: [\"10.96.1.9\"]: may not change once set"
                    .to_string(),
                "spec.clusterIP: Invalid value: \"10.96.1.9\": field is immutable".to_string(),
            ])
        );

        // A changed node port is checked (its own old value does not count as used).
        let mut new = json!({"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30101}]}});
        assert_eq!(
            a.prepare_service_update(&old, &mut new, &used_ips, &used_ports),
            Ok(())
        );
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30101);

        // NodePort → ClusterIP drops the unchanged node ports.
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        assert_eq!(
            a.prepare_service_update(&old, &mut new, &used_ips, &used_ports),
            Ok(())
        );
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(new["spec"]["clusterIP"], "10.96.1.1");

        // ClusterIP → ExternalName drops the unchanged address and families.
        let mut new = old.clone();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["externalName"] = json!("example.com");
        assert_eq!(
            a.prepare_service_update(&old, &mut new, &used_ips, &used_ports),
            Ok(())
        );
        for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            assert!(new["spec"].get(k).is_none(), "{k}");
        }

        // ExternalName → ClusterIP allocates.
        let ext = json!({"spec": {"type": "ExternalName", "externalName": "example.com"}});
        let mut new = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        assert_eq!(
            a.prepare_service_update(&ext, &mut new, &used_ips, &used_ports),
            Ok(())
        );
        assert_eq!(new["spec"]["clusterIP"], "10.96.1.2");
    }

    fn service(selector: Value) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "svc-uid", "labels": {"app": "web"}},
            "spec": {"selector": selector, "clusterIP": "10.96.1.1",
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                          {"name": "metrics", "port": 9090, "targetPort": 9100}]},
        })
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool, with_http: bool) -> Value {
        let mut ports = vec![json!({"name": "metrics", "containerPort": 9100})];
        if with_http {
            ports.push(json!({"name": "http", "containerPort": 8080}));
        }
        let mut p = json!({
            "metadata": {"name": name, "namespace": "shop", "uid": format!("{name}-uid"), "labels": {"app": "web", "tier": "fe"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if let Some(ip) = ip {
            p["status"]["podIP"] = json!(ip);
        }
        p
    }

    /// What the store would hold after the actions ran.
    fn stored(action: &Action, n: usize) -> Value {
        let (Action::Create { object, .. } | Action::Update { object, .. }) = action else {
            panic!("not a write: {action:?}")
        };
        let mut o = object.clone();
        if o["metadata"].get("name").is_none() {
            o["metadata"]["name"] = json!(format!("web-{n:05}"));
            o["metadata"]["uid"] = json!(format!("slice-{n}"));
        }
        o["metadata"]["resourceVersion"] = json!(n.to_string());
        o
    }

    #[test]
    fn endpoints_and_slices() {
        let svc = service(json!({"app": "web"}));
        let pods = vec![
            pod("a", Some("10.1.0.2"), true, true),
            pod("b", Some("10.1.0.3"), false, true),
            pod("c", None, true, true),
            pod("d", Some("10.1.0.5"), true, false),
            {
                let mut p = pod("e", Some("10.1.0.6"), true, true);
                p["metadata"]["namespace"] = json!("other");
                p
            },
        ];
        let actions = endpoints_for(&svc, &pods, None, &[]);
        assert_eq!(actions.len(), 3, "{actions:#?}");
        let Action::Create {
            kind, object: ep, ..
        } = &actions[0]
        else {
            panic!()
        };
        assert_eq!(*kind, ENDPOINTS);
        assert_eq!(ep["metadata"]["labels"], json!({"app": "web"}));
        let target = |n: &str| json!({"kind": "Pod", "namespace": "shop", "name": n, "uid": format!("{n}-uid")});
        assert_eq!(
            ep["subsets"],
            json!([
                {"addresses": [{"ip": "10.1.0.2", "nodeName": "node-a", "targetRef": target("a")}],
                 "notReadyAddresses": [{"ip": "10.1.0.3", "nodeName": "node-a", "targetRef": target("b")}],
                 "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9100, "protocol": "TCP"}]},
                {"addresses": [{"ip": "10.1.0.5", "nodeName": "node-a", "targetRef": target("d")}],
                 "ports": [{"name": "metrics", "port": 9100, "protocol": "TCP"}]},
            ])
        );
        // Two port sets: two slices.
        let slices: Vec<&Value> = actions[1..]
            .iter()
            .map(|a| match a {
                Action::Create { kind, object, .. } if *kind == ENDPOINT_SLICES => object,
                other => panic!("{other:?}"),
            })
            .collect();
        let full = slices
            .iter()
            .find(|s| s["ports"].as_array().unwrap().len() == 2)
            .unwrap();
        assert_eq!(full["metadata"]["generateName"], "web-");
        assert_eq!(
            full["metadata"]["labels"],
            json!({"app": "web", LABEL_MANAGED_BY: ENDPOINT_SLICE_CONTROLLER, LABEL_SERVICE_NAME: "web"})
        );
        assert_eq!(
            full["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "svc-uid", "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(full["addressType"], "IPv4");
        assert_eq!(
            full["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics", "port": 9100, "protocol": "TCP"}])
        );
        assert_eq!(
            full["endpoints"],
            json!([
                {"addresses": ["10.1.0.2"], "conditions": {"ready": true, "serving": true, "terminating": false}, "targetRef": target("a"), "nodeName": "node-a"},
                {"addresses": ["10.1.0.3"], "conditions": {"ready": false, "serving": false, "terminating": false}, "targetRef": target("b"), "nodeName": "node-a"},
            ])
        );

        // Fed back as the store holds them: nothing to do.
        let ep_stored = stored(&actions[0], 1);
        let slices_stored: Vec<Value> = actions[1..]
            .iter()
            .enumerate()
            .map(|(i, a)| stored(a, i + 2))
            .collect();
        assert_eq!(
            endpoints_for(&svc, &pods, Some(&ep_stored), &slices_stored),
            vec![]
        );

        // b becomes ready: one Endpoints update and one slice update, in place.
        let mut pods2 = pods.clone();
        pods2[1] = pod("b", Some("10.1.0.3"), true, true);
        let actions = endpoints_for(&svc, &pods2, Some(&ep_stored), &slices_stored);
        assert_eq!(actions.len(), 2, "{actions:#?}");
        let Action::Update { object, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(object["metadata"]["resourceVersion"], "1");
        assert_eq!(
            object["subsets"][0]["addresses"].as_array().unwrap().len(),
            2
        );
        assert!(object["subsets"][0].get("notReadyAddresses").is_none());
        let Action::Update { kind, object, .. } = &actions[1] else {
            panic!()
        };
        assert_eq!(*kind, ENDPOINT_SLICES);
        assert_eq!(object["metadata"]["name"], full_name(&slices_stored));
        assert_eq!(object["endpoints"][1]["conditions"]["ready"], true);

        // A terminating pod leaves Endpoints but stays in its slice as terminating.
        let mut pods3 = pods.clone();
        pods3[0]["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let actions = endpoints_for(&svc, &pods3, Some(&ep_stored), &slices_stored);
        let Action::Update { object, .. } = &actions[0] else {
            panic!()
        };
        assert!(object["subsets"][0].get("addresses").is_none());
        let Action::Update { object, .. } = &actions[1] else {
            panic!()
        };
        assert_eq!(
            object["endpoints"][0]["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );

        // No pods left: Endpoints without subsets, one placeholder slice reusing a slice, the
        // other deleted.
        let actions = endpoints_for(&svc, &[], Some(&ep_stored), &slices_stored);
        assert_eq!(actions.len(), 3, "{actions:#?}");
        let Action::Update { object, .. } = &actions[0] else {
            panic!()
        };
        assert!(object.get("subsets").is_none());
        let Action::Update { object, .. } = &actions[1] else {
            panic!()
        };
        assert_eq!(object["endpoints"], json!([]));
        assert_eq!(object["ports"], json!([]));
        assert!(
            matches!(&actions[2], Action::Delete { kind, uid: Some(_), .. } if *kind == ENDPOINT_SLICES)
        );

        // A slice left by an earlier Service of the same name is deleted.
        let mut foreign = slices_stored[0].clone();
        foreign["metadata"]["ownerReferences"][0]["uid"] = json!("old-svc");
        let actions = endpoints_for(
            &svc,
            &pods,
            Some(&ep_stored),
            &[foreign, slices_stored[1].clone()],
        );
        assert!(actions.iter().any(|a| matches!(a, Action::Delete { name, .. } if *name == slices_stored[0]["metadata"]["name"])));
        assert!(actions.iter().any(|a| matches!(a, Action::Create { .. })));

        // Without a selector the controller stays away.
        let manual = service(Value::Null);
        assert_eq!(endpoints_for(&manual, &pods, None, &[]), vec![]);
        assert_eq!(
            endpoints_for_deleted("shop", "web"),
            Action::Delete {
                kind: ENDPOINTS,
                namespace: "shop".into(),
                name: "web".into(),
                uid: None,
                propagation: None
            }
        );
    }

    fn full_name(slices: &[Value]) -> Value {
        slices
            .iter()
            .find(|s| s["ports"].as_array().unwrap().len() == 2)
            .unwrap()["metadata"]["name"]
            .clone()
    }

    #[test]
    fn headless_and_publish_not_ready() {
        let mut svc = service(json!({"app": "web"}));
        svc["spec"]["clusterIP"] = json!("None");
        svc["spec"]["ports"] = json!([]);
        svc["spec"]["publishNotReadyAddresses"] = json!(true);
        let mut p = pod("a", Some("10.1.0.2"), false, true);
        p["spec"]["hostname"] = json!("a");
        p["spec"]["subdomain"] = json!("web");
        let actions = endpoints_for(&svc, &[p], None, &[]);
        let Action::Create { object, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(object["metadata"]["labels"][LABEL_HEADLESS], "");
        assert_eq!(object["subsets"][0]["addresses"][0]["hostname"], "a");
        assert!(object["subsets"][0].get("ports").is_none());
        let Action::Create { object, .. } = &actions[1] else {
            panic!()
        };
        assert_eq!(object["metadata"]["labels"][LABEL_HEADLESS], "");
        assert_eq!(object["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(object["endpoints"][0]["conditions"]["serving"], false);
        assert_eq!(object["endpoints"][0]["hostname"], "a");
    }

    #[test]
    fn kubernetes_service_objects() {
        let a = IpAllocator::new(DEFAULT_SERVICE_CIDR).unwrap();
        let (svc, ep) = kubernetes_service(a.kubernetes_ip(), Ipv4Addr::new(192, 168, 1, 10), 6443);
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1");
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443})
        );
        assert!(svc["spec"].get("selector").is_none());
        assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "192.168.1.10");
        assert_eq!(ep["subsets"][0]["ports"][0]["port"], 6443);
        // The controller leaves it alone (no selector).
        assert_eq!(endpoints_for(&svc, &[], Some(&ep), &[]), vec![]);
        let slice = kubernetes_endpoint_slice(Ipv4Addr::new(192, 168, 1, 10), 6443);
        assert_eq!(
            slice["metadata"]["labels"][LABEL_SERVICE_NAME],
            "kubernetes"
        );
        let (used, _) = used_allocations(&[svc]);
        assert_eq!(
            a.allocate_specific(a.kubernetes_ip(), &used),
            Err(AllocError::IpAllocated)
        );
    }
}
