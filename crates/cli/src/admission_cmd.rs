//! `palisade admission serve|manifests|audit`: the admission webhook, its cluster manifests, and an
//! audit of existing objects against the same policy.

use crate::config;
use crate::write_output;
use anyhow::{Context, Result, bail};
use clap::Args;
use palisade_admission::catalogue::{Action, AdmissionConfig};
use palisade_admission::manifests::{MAX_CONFIG_MAP_BYTES, ManifestOptions, PackagedConfig, manifests};
use palisade_admission::review::parse_review;
use palisade_admission::{FailurePolicy, Server, ServerConfig, Webhook};
use palisade_tls::{FixedResolver, ReloadingResolver, SelfSigned, certified_key, server_config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain (reloaded when the file changes).
    #[arg(long, requires = "key", conflicts_with = "self_signed")]
    pub cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Generate a CA and a serving certificate at start and print the caBundle.
    #[arg(long)]
    pub self_signed: bool,
    /// DNS names (or IPs) for the self-signed serving certificate.
    #[arg(long = "dns-name", default_values = ["palisade-admission.palisade-system.svc", "localhost", "127.0.0.1"])]
    pub dns_names: Vec<String>,
    /// Also write the self-signed CA certificate (PEM) to this file.
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// palisade.yaml with an `admission:` section (actions per rule and namespace, PSS level, ...).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// What to answer when an evaluation cannot finish: Fail (deny) or Ignore (allow).
    #[arg(long, value_parser = ["Fail", "Ignore"])]
    pub failure_policy: Option<String>,
    /// Time budget of one evaluation in milliseconds.
    #[arg(long)]
    pub evaluation_timeout_ms: Option<u64>,
    /// Largest AdmissionReview body accepted, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// The Kubernetes API for `gatekeeper.sync` (default: the in-cluster service account).
    #[arg(long, value_name = "URL")]
    pub kube_api: Option<String>,
    /// Bearer token file for --kube-api.
    #[arg(long, value_name = "FILE")]
    pub kube_token_file: Option<PathBuf>,
    /// CA bundle (PEM) for --kube-api.
    #[arg(long, value_name = "FILE")]
    pub kube_ca_file: Option<PathBuf>,
    /// Memory of the whole process, in MiB, past which Rego evaluations stop with an error (then
    /// the failure policy applies) instead of growing until the process is killed; 0 for none.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub rego_memory_limit: u64,
    /// Rego evaluator for Gatekeeper templates: `auto` runs a template on regorus' register VM
    /// when a static check proves it gives the interpreter's answers (about 2.5x less CPU for
    /// it), the interpreter otherwise; `interpreter` forces the interpreter everywhere.
    #[arg(long, value_name = "ENGINE", default_value = "auto", value_parser = ["auto", "interpreter"])]
    pub rego_engine: String,
    /// Threads one AdmissionReview may spread its Gatekeeper constraints over, so an answer
    /// comes sooner while cores are idle; 0 for one per core.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub review_threads: usize,
    /// Gatekeeper decisions to remember, by the part of the review each template reads (the
    /// Pods of one ReplicaSet differ only in their names, which few templates read); 0 turns
    /// remembering off. Templates that call the clock or the network are never remembered.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub decision_cache: usize,
}

#[derive(Args, Debug)]
pub struct ManifestsArgs {
    #[arg(long, default_value = "palisade-system")]
    pub namespace: String,
    #[arg(long, default_value = "ghcr.io/palisade-sec/palisade:0.1.0")]
    pub image: String,
    #[arg(long, default_value = "Fail", value_parser = ["Fail", "Ignore"])]
    pub failure_policy: String,
    #[arg(long, default_value_t = 5)]
    pub timeout_seconds: u32,
    /// caBundle (base64 PEM) for the webhook configurations, e.g. from `serve --self-signed`.
    #[arg(long)]
    pub ca_bundle: Option<String>,
    /// palisade.yaml for the webhook: packaged into a ConfigMap with the Gatekeeper policies it
    /// names (and a ClusterRole for `gatekeeper.sync`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Manifest files, directories or `-`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

/// The `admission:` section and the organisation `policy:` of palisade.yaml.
type LoadedConfig = (AdmissionConfig, palisade_posture::labels::Policy);

fn admission_config(path: Option<&PathBuf>) -> Result<LoadedConfig> {
    let Some(path) = path else {
        return Ok(Default::default());
    };
    let config = config::load_config(path)?;
    let admission = match config.admission {
        None => AdmissionConfig::default(),
        Some(value) => {
            serde_json::from_value(value).with_context(|| format!("{}: admission", path.display()))?
        }
    };
    Ok((admission, config.policy))
}

fn webhook((config, policy): &LoadedConfig, path: Option<&PathBuf>) -> Result<Webhook> {
    let mut catalogue = config.catalogue_policy().map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}",
            path.map(|p| p.display().to_string()).unwrap_or_default()
        )
    })?;
    catalogue.policy = policy.clone();
    let role_guard =
        palisade_admission::role_guard::RoleGuard::new(config.role_assignment.clone().unwrap_or_default());
    let images = match &config.images {
        Some(images) if !images.verify.is_empty() => {
            let docker_config = match palisade_registry::DockerConfig::default_path() {
                Some(p) => palisade_registry::DockerConfig::load(&p)?,
                None => Default::default(),
            };
            let client = palisade_registry::Client::new(palisade_registry::ClientOptions {
                docker_config,
                insecure_registries: images.insecure_registries.clone(),
                timeout: std::time::Duration::from_millis(images.registry_timeout_ms.unwrap_or(1500).max(1)),
                ..Default::default()
            })?;
            let verifier =
                palisade_admission::cosign::ImageVerifier::new(&images.verify, client).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: {e}",
                        path.map(|p| p.display().to_string()).unwrap_or_default()
                    )
                })?;
            Some(verifier)
        }
        _ => None,
    };
    let gatekeeper = match &config.gatekeeper {
        Some(gk) if !gk.paths.is_empty() => Some(Arc::new(std::sync::RwLock::new(load_gatekeeper(
            &gk.paths,
            gk.time_budget_ms,
        )?))),
        _ => None,
    };
    let scan_gate = match config
        .images
        .as_ref()
        .and_then(|i| i.scan.as_ref().map(|s| (i, s)))
    {
        Some((images, scan)) => {
            let docker_config = match palisade_registry::DockerConfig::default_path() {
                Some(p) => palisade_registry::DockerConfig::load(&p)?,
                None => Default::default(),
            };
            let client = palisade_registry::Client::new(palisade_registry::ClientOptions {
                docker_config,
                insecure_registries: images.insecure_registries.clone(),
                ..Default::default()
            })?;
            let gate = palisade_admission::scan_gate::ScanGate::new(scan, client).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}",
                    path.map(|p| p.display().to_string()).unwrap_or_default()
                )
            })?;
            Some(gate)
        }
        None => None,
    };
    let fail_closed = config.failure_policy.as_deref() != Some("Ignore");
    Ok(Webhook {
        catalogue,
        role_guard,
        images,
        gatekeeper,
        scan_gate,
        fail_closed,
    })
}

/// Reads every ConstraintTemplate, then every Constraint, under `paths`.
fn load_gatekeeper(paths: &[String], budget_ms: Option<u64>) -> Result<palisade_policy::PolicySet> {
    let limits = palisade_k8s::Limits::default();
    let inputs =
        palisade_k8s::discover(paths, &limits).map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    let mut templates = Vec::new();
    let mut constraints = Vec::new();
    for input in &inputs {
        let name = input.display_name();
        let text = palisade_k8s::read_input(input, &limits).with_context(|| name.clone())?;
        palisade_k8s::load_str(&text, &name, |loaded| {
            if let palisade_k8s::Loaded::Object(obj) = loaded {
                let api = obj.value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
                if obj.kind() == "ConstraintTemplate" && api.starts_with("templates.gatekeeper.sh/") {
                    templates.push((name.clone(), obj.value));
                } else if api.starts_with("constraints.gatekeeper.sh/") {
                    constraints.push((name.clone(), obj.value));
                }
            }
        });
    }
    let mut set = palisade_policy::PolicySet::new();
    if let Some(ms) = budget_ms {
        set.set_time_budget(std::time::Duration::from_millis(ms.max(1)));
    }
    for (file, template) in &templates {
        set.add_template(template)
            .with_context(|| format!("{file}: ConstraintTemplate"))?;
    }
    for (file, constraint) in &constraints {
        set.add_constraint(constraint)
            .with_context(|| format!("{file}: constraint"))?;
    }
    eprintln!(
        "palisade admission: {} ConstraintTemplates, {} constraints loaded",
        templates.len(),
        constraints.len()
    );
    Ok(set)
}

/// Lists `gk.sync` from the cluster into the policies' inventory now, then every interval on a
/// thread of its own. A failed list keeps the last inventory (and says so on stderr).
fn start_cluster_sync(
    args: &ServeArgs,
    gk: &palisade_admission::catalogue::GatekeeperConfig,
    policies: Arc<std::sync::RwLock<palisade_policy::PolicySet>>,
) -> Result<()> {
    use palisade_admission::cluster::{KubeApi, SyncedResource, snapshot};
    let resources = gk
        .sync
        .iter()
        .map(|r| SyncedResource::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let api = match &args.kube_api {
        Some(url) => KubeApi::new(url, args.kube_token_file.as_deref(), args.kube_ca_file.as_deref())?,
        None => KubeApi::in_cluster()?,
    };
    let interval = Duration::from_secs(gk.sync_interval_seconds.unwrap_or(30).max(1));
    let sync = move || match snapshot(&api, &resources) {
        Ok(objects) => {
            let count = objects.len();
            let mut set = policies.write().unwrap_or_else(|e| e.into_inner());
            match set.set_inventory(objects) {
                Ok(()) => eprintln!("palisade admission: synced {count} objects into data.inventory"),
                Err(e) => eprintln!("palisade admission: cluster sync: {e}"),
            }
        }
        Err(e) => eprintln!("palisade admission: {e} (keeping the last inventory)"),
    };
    sync();
    std::thread::Builder::new()
        .name("cluster-sync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                sync();
            }
        })?;
    Ok(())
}

pub fn serve(args: ServeArgs) -> Result<u8> {
    let loaded = admission_config(args.config.as_ref())?;
    let webhook = webhook(&loaded, args.config.as_ref())?;
    let config = loaded.0;
    let failure_policy = match args
        .failure_policy
        .as_deref()
        .or(config.failure_policy.as_deref())
        .unwrap_or("Fail")
    {
        "Fail" => FailurePolicy::Fail,
        "Ignore" => FailurePolicy::Ignore,
        other => bail!("failure policy {other:?}: expected Fail or Ignore"),
    };
    palisade_policy::set_memory_limit((args.rego_memory_limit > 0).then_some(args.rego_memory_limit << 20));
    let rego_engine: palisade_policy::RegoEngine =
        args.rego_engine.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    if let Some(policies) = &webhook.gatekeeper {
        let mut set = policies.write().unwrap_or_else(|e| e.into_inner());
        set.set_rego_engine(rego_engine);
        set.set_review_threads(match args.review_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        });
        set.set_decision_cache(args.decision_cache);
        let engines = set.template_engines();
        eprintln!(
            "palisade admission: decisions of {} of {} ConstraintTemplates remembered (up to {})",
            engines.iter().filter(|t| t.rememberable).count(),
            engines.len(),
            args.decision_cache
        );
        eprintln!(
            "palisade admission: {} of {} ConstraintTemplates on the Rego VM ({rego_engine:?}; {} of them \
             only for reviews whose strings are within the Basic Multilingual Plane)",
            engines.iter().filter(|t| t.vm).count(),
            engines.len(),
            engines.iter().filter(|t| t.condition.is_some()).count()
        );
    }
    if let (Some(gk), Some(policies)) = (&config.gatekeeper, &webhook.gatekeeper)
        && !gk.sync.is_empty()
    {
        start_cluster_sync(&args, gk, policies.clone())?;
    }
    let mut listen_config = ServerConfig {
        listen: args.listen,
        max_body_bytes: args.max_body_bytes,
        failure_policy,
        ..ServerConfig::default()
    };
    if let Some(ms) = args.evaluation_timeout_ms.or(config.evaluation_timeout_ms) {
        listen_config.evaluation_timeout = Duration::from_millis(ms.max(1));
    }
    let resolver: Arc<dyn rustls::server::ResolvesServerCert> = if args.self_signed {
        let generated = SelfSigned::generate(&args.dns_names)?;
        if let Some(path) = &args.ca_out {
            std::fs::write(path, &generated.ca_pem)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        println!("caBundle: {}", generated.ca_bundle());
        Arc::new(FixedResolver(Arc::new(certified_key(
            generated.cert_pem.as_bytes(),
            generated.key_pem.as_bytes(),
        )?)))
    } else {
        match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => Arc::new(ReloadingResolver::new(cert.clone(), key.clone())?),
            _ => bail!("give --cert and --key, or --self-signed"),
        }
    };
    let tls = server_config(resolver)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let server = Server::bind(listen_config, tls, webhook).await?;
        eprintln!(
            "palisade admission: listening on https://{}",
            server.local_addr()?
        );
        server.run(shutdown_signal()).await?;
        eprintln!("palisade admission: stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}

/// Completes on SIGTERM (what Kubernetes sends) or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub fn print_manifests(args: ManifestsArgs) -> Result<u8> {
    let mut options = ManifestOptions {
        namespace: args.namespace,
        image: args.image,
        failure_policy: args.failure_policy,
        timeout_seconds: args.timeout_seconds.clamp(1, 30),
        ca_bundle: args.ca_bundle,
        ..ManifestOptions::default()
    };
    if let Some(path) = &args.config {
        let packaged = package_config(path)?;
        options.config_text = palisade_k8s::emit::to_yaml(&packaged.document);
        let bytes = options.config_text.len()
            + packaged
                .policies
                .iter()
                .map(|(k, t)| k.len() + t.len())
                .sum::<usize>();
        if bytes > MAX_CONFIG_MAP_BYTES {
            bail!(
                "{}: the configuration and its Gatekeeper policies are {bytes} bytes; a ConfigMap holds at most {MAX_CONFIG_MAP_BYTES}",
                path.display()
            );
        }
        options.config = Some(packaged);
    }
    let mut text = String::new();
    for object in manifests(&options) {
        text.push_str("---\n");
        text.push_str(&palisade_k8s::emit::to_yaml(&object));
    }
    write_output(args.output.as_deref(), &text)?;
    Ok(0)
}

/// palisade.yaml with what it names from the local disk (Gatekeeper policies, cosign key files),
/// checked the way `admission serve` checks it.
fn package_config(path: &PathBuf) -> Result<PackagedConfig> {
    let (config, policy) = admission_config(Some(path))?;
    // Builds the webhook as `serve` would: a policy that does not compile fails here, not in
    // the cluster.
    webhook(&(config.clone(), policy), Some(path))?;
    let document = config::read_yaml(path)?;
    let limits = palisade_k8s::Limits::default();
    let mut policies = Vec::new();
    if let Some(gk) = &config.gatekeeper
        && !gk.paths.is_empty()
    {
        let inputs =
            palisade_k8s::discover(&gk.paths, &limits).map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
        for input in &inputs {
            let name = input.display_name();
            let text = palisade_k8s::read_input(input, &limits).with_context(|| name.clone())?;
            policies.push((name, text));
        }
    }
    let mut key_files = Vec::new();
    for entry in config.images.iter().flat_map(|i| &i.verify) {
        if let Some(file) = &entry.public_key_file {
            let input = palisade_k8s::InputFile::Path(PathBuf::from(file));
            let key_limits = palisade_k8s::Limits {
                max_file_bytes: 64 * 1024,
                ..Default::default()
            };
            let pem = palisade_k8s::read_input(&input, &key_limits).with_context(|| file.clone())?;
            key_files.push((file.clone(), pem));
        }
    }
    if let Some(scan) = config.images.as_ref().and_then(|i| i.scan.as_ref())
        && scan.on_demand != Some(false)
    {
        eprintln!(
            "note: admission.images.scan scans missing images in the webhook: its vulnerability database ({}) must be present in the container",
            scan.db.as_deref().unwrap_or("the default location")
        );
    }
    PackagedConfig::new(document, policies, &key_files)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Evaluates existing objects as if each were created now, like Gatekeeper's audit.
pub fn audit(args: AuditArgs) -> Result<u8> {
    let webhook = webhook(&admission_config(args.config.as_ref())?, args.config.as_ref())?;
    let limits = palisade_k8s::Limits::default();
    let inputs =
        palisade_k8s::discover(&args.paths, &limits).map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    let mut rows = Vec::new();
    let mut errors = 0usize;
    for input in &inputs {
        let name = input.display_name();
        let text = match palisade_k8s::read_input(input, &limits) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("palisade: {name}: {e}");
                errors += 1;
                continue;
            }
        };
        palisade_k8s::load_str(&text, &name, |loaded| match loaded {
            palisade_k8s::Loaded::Object(obj) => {
                let review = synthetic_review(&obj.value);
                let Ok(request) = parse_review(&serde_json::to_vec(&review).unwrap_or_default()) else {
                    return;
                };
                let outcomes = webhook.catalogue.evaluate(&request);
                let decision = webhook.validate(&request);
                let rules = |a: Action| -> Vec<String> {
                    outcomes
                        .iter()
                        .filter(|o| o.action == a)
                        .map(|o| o.finding.rule_id.clone())
                        .collect()
                };
                rows.push(serde_json::json!({
                    "file": name, "line": obj.line,
                    "kind": obj.kind(), "namespace": request.namespace, "name": request.name,
                    "allowed": decision.allowed,
                    "denied_by": rules(Action::Enforce),
                    "warned_by": rules(Action::Warn),
                    "audited": rules(Action::Audit),
                    "message": decision.message,
                }));
            }
            palisade_k8s::Loaded::Note(palisade_k8s::Note::ParseError {
                file, line, message, ..
            }) => {
                eprintln!("palisade: {file}:{line}: {message}");
                errors += 1;
            }
            palisade_k8s::Loaded::Note(_) => {}
        });
    }
    let denied = rows.iter().filter(|r| r["allowed"] == false).count();
    let text = if args.format == "json" {
        format!("{}\n", serde_json::to_string_pretty(&rows)?)
    } else {
        let mut out = String::new();
        for r in &rows {
            let verdict = if r["allowed"] == true { "allow" } else { "DENY " };
            let ns = r["namespace"]
                .as_str()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            let mut line = format!(
                "{verdict} {} {ns}{}  ({}:{})",
                r["kind"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or(""),
                r["file"].as_str().unwrap_or(""),
                r["line"]
            );
            for (label, key) in [("denied by", "denied_by"), ("warned by", "warned_by")] {
                let ids: Vec<&str> = r[key]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                if !ids.is_empty() {
                    line.push_str(&format!("\n      {label}: {}", ids.join(", ")));
                }
            }
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&format!(
            "\n{} objects: {} would be denied, {} allowed\n",
            rows.len(),
            denied,
            rows.len() - denied
        ));
        out
    };
    write_output(None, &text)?;
    Ok(if errors > 0 {
        crate::EXIT_ERROR
    } else if denied > 0 {
        crate::EXIT_FINDINGS
    } else {
        0
    })
}

/// The AdmissionReview the API server would send to create `object`.
fn synthetic_review(object: &serde_json::Value) -> serde_json::Value {
    let api_version = object.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let meta = object.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let namespace = meta.and_then(|m| m.get("namespace")).and_then(|v| v.as_str());
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "audit", "operation": "CREATE", "name": name, "namespace": namespace,
            "kind": {"group": group, "version": version, "kind": object.get("kind").and_then(|v| v.as_str()).unwrap_or("")},
            "object": object
        }
    })
}
