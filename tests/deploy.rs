//! The container files, checked without containers: `docker-compose.yml`,
//! `Dockerfile`, `.dockerignore` and `.env.example` are parsed and held to
//! what onair needs, and the compose file's environment for onair starts the
//! real binary outside containers.

mod common;

use common::free_port;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use figment::providers::{Format, Toml};
use serde_norway::Value;

const BIN: &str = env!("CARGO_BIN_EXE_onair");

/// The services the compose file must have.
const SERVICES: [&str; 5] = ["postgres", "onair", "minio", "createbucket", "rtmp"];

/// Variables onair reads that are not `ONAIR_<SECTION>__<KEY>` configuration keys.
const NON_KEY_VARIABLES: [&str; 3] = ["DATABASE_URL", "ONAIR_KEYS", "ONAIR_LOG"];

/// The runtime packages the image must install (the composer's plugins,
/// TLS roots for Mux and rtmps://, curl for the health check).
const RUNTIME_PACKAGES: [&str; 7] = [
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-libav",
    "ca-certificates",
    "curl",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// docker-compose.yml and .env.example
// ---------------------------------------------------------------------------

fn compose() -> Value {
    serde_norway::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(
        service.is_mapping(),
        "docker-compose.yml has no service `{name}`"
    );
    service
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A list of strings (`[a, b]`) or one string split on whitespace, as compose
/// reads `command`, `entrypoint` and `healthcheck.test`.
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().filter_map(text).collect(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// A service's `environment`, uninterpolated, in either of compose's forms.
/// Values must be strings or numbers: a bare `KEY:` would take the value from
/// whatever shell runs compose, and YAML booleans are refused by compose.
fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match &service["environment"] {
        Value::Mapping(map) => {
            for (key, value) in map {
                let key = text(key).expect("environment names are strings");
                let value = text(value).unwrap_or_else(|| {
                    panic!("environment `{key}` must be a string (quote it), not {value:?}")
                });
                env.insert(key, value);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                let item = text(item).expect("environment entries are strings");
                let (key, value) = item
                    .split_once('=')
                    .unwrap_or_else(|| panic!("environment entry `{item}` has no value"));
                env.insert(key.to_string(), value.to_string());
            }
        }
        Value::Null => {}
        other => panic!("unexpected environment {other:?}"),
    }
    env
}

/// `depends_on` as service → condition (the short list form means `service_started`).
fn depends_on(service: &Value) -> BTreeMap<String, String> {
    match &service["depends_on"] {
        Value::Sequence(items) => items
            .iter()
            .filter_map(text)
            .map(|s| (s, "service_started".to_string()))
            .collect(),
        Value::Mapping(map) => map
            .iter()
            .map(|(name, spec)| {
                let condition =
                    text(&spec["condition"]).unwrap_or_else(|| "service_started".to_string());
                (text(name).unwrap(), condition)
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A published port: (host port, container port, protocol).
#[derive(Debug, PartialEq, Eq)]
struct Port {
    published: String,
    target: String,
    protocol: String,
}

fn ports(service: &Value) -> Vec<Port> {
    let Value::Sequence(items) = &service["ports"] else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| match item {
            Value::Mapping(_) => Port {
                published: text(&item["published"]).unwrap_or_default(),
                target: text(&item["target"]).expect("a port needs a target"),
                protocol: text(&item["protocol"]).unwrap_or_else(|| "tcp".into()),
            },
            other => {
                let spec = text(other).expect("a port is a string or a number");
                let (spec, protocol) = spec.split_once('/').unwrap_or((&spec, "tcp"));
                // [ip:][host:]container — the IP may itself contain colons only
                // in brackets, which this file does not use.
                let parts: Vec<&str> = spec.split(':').collect();
                let target = parts.last().unwrap().to_string();
                let published = if parts.len() >= 2 {
                    parts[parts.len() - 2].to_string()
                } else {
                    String::new()
                };
                Port {
                    published,
                    target,
                    protocol: protocol.to_string(),
                }
            }
        })
        .collect()
}

/// `volumes` entries as (source, target).
fn volumes(service: &Value) -> Vec<(String, String)> {
    let Value::Sequence(items) = &service["volumes"] else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| match item {
            Value::Mapping(_) => (
                text(&item["source"]).unwrap_or_default(),
                text(&item["target"]).expect("a volume needs a target"),
            ),
            other => {
                let spec = text(other).unwrap();
                let mut parts = spec.split(':');
                let source = parts.next().unwrap().to_string();
                let target = parts.next().unwrap_or_default().to_string();
                (source, target)
            }
        })
        .collect()
}

/// A named volume (declared at the top level) is mounted at `target`.
fn assert_named_volume(compose: &Value, name: &str, target: &str) {
    let mounted = volumes(service(compose, name));
    let Some((source, _)) = mounted.iter().find(|(_, t)| t == target) else {
        panic!("`{name}` mounts nothing at {target}: {mounted:?}");
    };
    let declared = compose["volumes"]
        .as_mapping()
        .is_some_and(|v| v.contains_key(source.as_str()));
    assert!(
        declared,
        "`{name}` mounts `{source}` at {target}, which is not a named volume declared under `volumes:`"
    );
}

fn healthcheck(service: &Value) -> Vec<String> {
    words(&service["healthcheck"]["test"])
}

/// `.env.example` as compose's dotenv reads it: `KEY=value`, `#` comments,
/// single quotes literal, double quotes with `\` escapes.
fn env_example() -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for (n, line) in read(".env.example").lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, raw) = line
            .split_once('=')
            .unwrap_or_else(|| panic!(".env.example line {}: no `=`: {line}", n + 1));
        assert!(
            !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && key == key.trim(),
            ".env.example line {}: bad name `{key}`",
            n + 1
        );
        let value = if let Some(quoted) = raw.strip_prefix('\'') {
            quoted
                .split_once('\'')
                .unwrap_or_else(|| panic!(".env.example line {}: unclosed '", n + 1))
                .0
                .to_string()
        } else if let Some(quoted) = raw.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.chars();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => panic!(".env.example line {}: dangling \\", n + 1),
                    },
                    Some(c) => value.push(c),
                    None => panic!(".env.example line {}: unclosed \"", n + 1),
                }
            }
            value
        } else {
            raw.split(" #").next().unwrap().trim().to_string()
        };
        assert!(
            vars.insert(key.to_string(), value).is_none(),
            ".env.example defines {key} twice"
        );
    }
    vars
}

/// One `$` expression of compose's interpolation.
enum Piece {
    Text(String),
    /// name, operator (`:-`, `-`, `:?`, `?`, `:+`, `+` or empty), operand
    Var(String, String, String),
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn pieces(input: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            literal.push('$');
            rest = after;
        } else if let Some(body) = rest.strip_prefix('{') {
            let end = body
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in `{input}`"));
            let expression = &body[..end];
            rest = &body[end + 1..];
            let name_end = expression
                .find(|c: char| !is_name_char(c))
                .unwrap_or(expression.len());
            let (name, tail) = expression.split_at(name_end);
            assert!(!name.is_empty(), "empty variable name in `{input}`");
            let operator = [":-", ":?", ":+", "-", "?", "+"]
                .into_iter()
                .find(|op| tail.starts_with(op))
                .unwrap_or("");
            assert!(
                tail.is_empty() || !operator.is_empty(),
                "unsupported expression `${{{expression}}}` in `{input}`"
            );
            assert!(
                !tail[operator.len()..].contains('$'),
                "nested interpolation in `{input}` is not supported here"
            );
            out.push(Piece::Text(std::mem::take(&mut literal)));
            out.push(Piece::Var(
                name.to_string(),
                operator.to_string(),
                tail[operator.len()..].to_string(),
            ));
        } else {
            let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
            if end == 0 {
                literal.push('$');
                continue;
            }
            out.push(Piece::Text(std::mem::take(&mut literal)));
            out.push(Piece::Var(
                rest[..end].to_string(),
                String::new(),
                String::new(),
            ));
            rest = &rest[end..];
        }
    }
    literal.push_str(rest);
    out.push(Piece::Text(literal));
    out
}

/// The variables `input` refers to.
fn variables(input: &str) -> Vec<String> {
    pieces(input)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(name, ..) => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

/// Compose's interpolation of `input` with `vars` (unset variables are errors
/// here, where compose would warn and use an empty string).
fn interpolate(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for piece in pieces(input) {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Var(name, operator, operand) => {
                let value = vars.get(&name);
                let set_nonempty = value.is_some_and(|v| !v.is_empty());
                let resolved = match operator.as_str() {
                    ":-" if !set_nonempty => operand,
                    "-" if value.is_none() => operand,
                    ":+" => {
                        if set_nonempty {
                            operand
                        } else {
                            String::new()
                        }
                    }
                    "+" => {
                        if value.is_some() {
                            operand
                        } else {
                            String::new()
                        }
                    }
                    ":?" if !set_nonempty => panic!("{name} is required: {operand}"),
                    _ => value
                        .unwrap_or_else(|| panic!("`{input}` uses {name}, undefined"))
                        .clone(),
                };
                out.push_str(&resolved);
            }
        }
    }
    out
}

/// Every string in the document (compose interpolates all of them).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Mapping(map) => map.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        Value::Tagged(tagged) => strings(&tagged.value, out),
        _ => {}
    }
}

/// `config/default.toml` as section → keys.
fn config_keys() -> BTreeMap<String, BTreeSet<String>> {
    let dict: figment::value::Dict =
        Toml::from_str(&read("config/default.toml")).expect("config/default.toml parses");
    dict.into_iter()
        .map(|(section, value)| {
            let keys = value
                .into_dict()
                .unwrap_or_else(|| panic!("[{section}] is a table"))
                .into_keys()
                .collect();
            (section, keys)
        })
        .collect()
}

#[test]
fn compose_has_the_five_services() {
    let compose = compose();
    let services = compose["services"]
        .as_mapping()
        .expect("docker-compose.yml has `services`");
    let names: BTreeSet<String> = services.keys().filter_map(text).collect();
    for name in SERVICES {
        assert!(
            names.contains(name),
            "service `{name}` is missing: {names:?}"
        );
    }
    assert!(
        text(&service(&compose, "postgres")["image"]).is_some_and(|i| i.starts_with("postgres:15")),
        "postgres runs postgres:15"
    );
    assert!(
        text(&service(&compose, "minio")["image"]).is_some_and(|i| i.starts_with("minio/minio")),
        "minio runs minio/minio"
    );
    assert!(
        text(&service(&compose, "createbucket")["image"])
            .is_some_and(|i| i.starts_with("minio/mc")),
        "createbucket runs minio/mc"
    );
    // Nothing is pulled as `latest`: every image names a version.
    for name in ["postgres", "minio", "createbucket", "rtmp"] {
        let image = text(&service(&compose, name)["image"]).unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "`{name}` image `{image}` is not pinned"
        );
    }
}

#[test]
fn postgres_keeps_its_data_in_a_named_volume_and_has_a_healthcheck() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    assert_named_volume(&compose, "postgres", "/var/lib/postgresql/data");
    let test = healthcheck(postgres);
    assert!(
        test.iter().any(|w| w.contains("pg_isready")),
        "postgres healthcheck must call pg_isready: {test:?}"
    );
    let env = environment(postgres);
    for var in ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"] {
        assert_eq!(
            env.get(var).map(String::as_str),
            Some(format!("${{{var}}}").as_str()),
            "postgres takes {var} from .env"
        );
    }
}

#[test]
fn onair_is_built_here_and_waits_for_postgres_and_its_bucket() {
    let compose = compose();
    let onair = service(&compose, "onair");

    let (context, dockerfile) = match &onair["build"] {
        Value::String(context) => (context.clone(), "Dockerfile".to_string()),
        build @ Value::Mapping(_) => (
            text(&build["context"]).expect("build.context"),
            text(&build["dockerfile"]).unwrap_or_else(|| "Dockerfile".into()),
        ),
        other => panic!("onair must be built (`build: .`), not {other:?}"),
    };
    assert!(
        matches!(context.as_str(), "." | "./"),
        "onair is built from the repository root, not `{context}`"
    );
    assert!(
        repo().join(&dockerfile).is_file(),
        "the build names `{dockerfile}`, which is not in the repository"
    );

    let depends = depends_on(onair);
    let wanted = [
        ("postgres", "service_healthy"),
        ("minio", "service_healthy"),
        ("createbucket", "service_completed_successfully"),
    ];
    for (dependency, condition) in wanted {
        assert_eq!(
            depends.get(dependency).map(String::as_str),
            Some(condition),
            "onair must depend on {dependency} with condition {condition}: {depends:?}"
        );
    }

    let published = ports(onair);
    let env = environment(onair);
    let udp_port = env
        .get("ONAIR_SFU__UDP_PORT")
        .cloned()
        .unwrap_or_else(|| "7882".into());
    for (port, protocol) in [("7880", "tcp"), (udp_port.as_str(), "udp")] {
        assert!(
            published.contains(&Port {
                published: port.into(),
                target: port.into(),
                protocol: protocol.into(),
            }),
            "onair must publish {port}/{protocol} on the same port: {published:?}"
        );
    }
    assert_eq!(
        env.get("ONAIR_SERVER__LISTEN").map(String::as_str),
        Some("0.0.0.0:7880"),
        "inside the container onair listens on every interface, port 7880"
    );

    let test = healthcheck(onair);
    assert!(
        test.iter()
            .any(|w| w.contains("127.0.0.1:7880/healthz") || w.contains("localhost:7880/healthz")),
        "onair's healthcheck asks /healthz on 7880: {test:?}"
    );
    assert_named_volume(&compose, "onair", "/var/lib/onair/recordings");
}

#[test]
fn minio_has_storage_a_healthcheck_and_a_one_shot_bucket_step() {
    let compose = compose();
    let vars = env_example();
    let minio = service(&compose, "minio");
    let command = words(&minio["command"]).join(" ");
    assert!(
        command.starts_with("server /data") && command.contains("--console-address"),
        "minio runs `server /data --console-address …`: {command}"
    );
    assert_named_volume(&compose, "minio", "/data");
    assert!(!healthcheck(minio).is_empty(), "minio needs a healthcheck");

    let create = service(&compose, "createbucket");
    assert_eq!(
        text(&create["restart"]).as_deref(),
        Some("no"),
        "createbucket runs once"
    );
    assert_eq!(
        depends_on(create).get("minio").map(String::as_str),
        Some("service_healthy"),
        "createbucket waits for a healthy minio"
    );
    // The bucket it makes is the bucket onair is given, on the minio service.
    let script = words(&create["entrypoint"])
        .into_iter()
        .chain(words(&create["command"]))
        .collect::<Vec<_>>()
        .join(" ");
    let script = interpolate(&script, &vars);
    let onair = environment(service(&compose, "onair"));
    let bucket = interpolate(&onair["ONAIR_STORAGE__BUCKET"], &vars);
    assert!(!bucket.is_empty(), "onair is given a bucket");
    assert!(
        script.contains("mc mb") && script.contains(&format!("/{bucket}")),
        "createbucket must `mc mb` the bucket `{bucket}`: {script}"
    );
    let endpoint = url::Url::parse(&interpolate(&onair["ONAIR_STORAGE__ENDPOINT"], &vars))
        .expect("ONAIR_STORAGE__ENDPOINT is a URL");
    assert_eq!(
        (endpoint.host_str(), endpoint.port_or_known_default()),
        (Some("minio"), Some(9000)),
        "onair talks to the minio service's S3 port"
    );
    // Both sides use the same credentials.
    let create_env = environment(create);
    let mc_host = create_env
        .iter()
        .find(|(k, _)| k.starts_with("MC_HOST_"))
        .map(|(_, v)| interpolate(v, &vars));
    if let Some(mc_host) = mc_host {
        let mc = url::Url::parse(&mc_host).expect("MC_HOST_* is a URL");
        assert_eq!(
            mc.username(),
            interpolate(&onair["ONAIR_STORAGE__ACCESS_KEY_ID"], &vars)
        );
        assert_eq!(
            mc.password(),
            Some(interpolate(&onair["ONAIR_STORAGE__SECRET_ACCESS_KEY"], &vars).as_str())
        );
    }
    assert_eq!(
        interpolate(&onair["ONAIR_STORAGE__PATH_STYLE"], &vars),
        "true",
        "MinIO needs path-style addressing"
    );
}

#[test]
fn the_bundled_rtmp_server_is_usable_as_a_custom_destination() {
    let compose = compose();
    let rtmp = service(&compose, "rtmp");
    assert!(
        ports(rtmp)
            .iter()
            .any(|p| p.target == "1935" && p.protocol == "tcp"),
        "the RTMP server publishes 1935"
    );
    // Its address is private, so onair must allow private destinations.
    let onair = environment(service(&compose, "onair"));
    assert_eq!(
        onair
            .get("ONAIR_LIMITS__ALLOW_PRIVATE_DESTINATIONS")
            .map(String::as_str),
        Some("true")
    );
}

#[test]
fn every_compose_variable_is_defined_in_env_example() {
    let mut all = Vec::new();
    strings(&compose(), &mut all);
    let used: BTreeSet<String> = all.iter().flat_map(|s| variables(s)).collect();
    assert!(
        !used.is_empty(),
        "the compose file takes settings from .env"
    );
    let defined = env_example();
    let undefined: Vec<_> = used.iter().filter(|v| !defined.contains_key(*v)).collect();
    assert!(
        undefined.is_empty(),
        "used in docker-compose.yml but not defined in .env.example: {undefined:?}"
    );
    let unused: Vec<_> = defined.keys().filter(|v| !used.contains(*v)).collect();
    assert!(
        unused.is_empty(),
        "defined in .env.example but not used by docker-compose.yml: {unused:?}"
    );
    // The defaults are usable as they are.
    let keys = onair::config::parse_key_list(&defined["ONAIR_KEYS"])
        .expect("ONAIR_KEYS in .env.example is `key: secret`");
    assert!(!keys.is_empty());
    assert!(
        keys.values().all(|s| s.expose().len() >= 32),
        "the example API secret is at least 32 characters (onair warns below that)"
    );
    // Optional settings may be empty: Mux credentials and the NAT address.
    for (name, value) in &defined {
        if !name.starts_with("MUX_") && name != "ONAIR_PUBLIC_IP" {
            assert!(!value.is_empty(), "{name} has no default in .env.example");
        }
    }
}

/// README's "Same configuration without containers" loads `.env` with
/// `set -a; . ./.env`: the shell must read the same values compose does.
#[test]
fn env_example_reads_the_same_in_a_shell() {
    let defined = env_example();
    let output = Command::new("bash")
        .args(["-c", "set -a; . ./.env.example; set +a; env -0"])
        .current_dir(repo())
        .env_clear()
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "bash cannot source .env.example: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shell: BTreeMap<String, String> = String::from_utf8(output.stdout)
        .unwrap()
        .split('\0')
        .filter_map(|entry| entry.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (name, value) in &defined {
        assert_eq!(
            shell.get(name),
            Some(value),
            "{name}: the shell and compose read .env.example differently"
        );
    }
}

#[test]
fn every_onair_variable_names_a_configuration_key() {
    let sections = config_keys();
    let env = environment(service(&compose(), "onair"));
    assert!(env.contains_key("DATABASE_URL") && env.contains_key("ONAIR_KEYS"));
    for name in env.keys() {
        if NON_KEY_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let (section, key) = name
            .strip_prefix("ONAIR_")
            .and_then(|rest| rest.split_once("__"))
            .unwrap_or_else(|| panic!("`{name}` is not ONAIR_<SECTION>__<KEY>"));
        let (section, key) = (section.to_lowercase(), key.to_lowercase());
        let keys = sections.get(&section).unwrap_or_else(|| {
            panic!(
                "`{name}`: config/default.toml has no [{section}] (sections: {:?})",
                sections.keys()
            )
        });
        assert!(
            keys.contains(&key),
            "`{name}`: [{section}] in config/default.toml has no key `{key}` (keys: {keys:?})"
        );
    }
}

// ---------------------------------------------------------------------------
// Dockerfile and .dockerignore
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

/// The Dockerfile's stages, each a list of instructions (continuations joined,
/// comments dropped).
fn dockerfile() -> Vec<Vec<Instruction>> {
    fn flush(line: &str, stages: &mut Vec<Vec<Instruction>>) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let instruction = Instruction {
            keyword: keyword.to_uppercase(),
            args: args.trim().to_string(),
        };
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push(instruction);
    }
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    let mut logical = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
        } else {
            logical.push_str(trimmed);
            flush(&logical, &mut stages);
            logical.clear();
        }
    }
    flush(&logical, &mut stages);
    stages
}

fn find<'a>(stage: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

/// Packages named by `apt-get install` in a stage's RUN instructions.
fn apt_packages(stage: &[Instruction]) -> BTreeSet<String> {
    let mut packages = BTreeSet::new();
    for run in find(stage, "RUN") {
        for command in run.split("&&").flat_map(|c| c.split(';')) {
            let words: Vec<&str> = command.split_whitespace().collect();
            let Some(at) = words
                .windows(2)
                .position(|w| matches!(w[0], "apt-get" | "apt") && w[1] == "install")
            else {
                continue;
            };
            packages.extend(
                words[at + 2..]
                    .iter()
                    .filter(|w| !w.starts_with('-'))
                    .map(|w| w.to_string()),
            );
        }
    }
    packages
}

/// The `-dev` packages `scripts/setup` installs for building.
fn setup_dev_packages() -> BTreeSet<String> {
    read("scripts/setup")
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(str::split_whitespace)
        .filter(|w| w.ends_with("-dev"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_dockerfile_builds_on_rust_and_runs_on_slim_debian_as_a_non_root_user() {
    let stages = dockerfile();
    assert_eq!(stages.len(), 2, "two stages: build and runtime");
    let (build, runtime) = (&stages[0], &stages[1]);

    let from = find(build, "FROM")[0];
    let mut from_words = from.split_whitespace();
    let image = from_words.next().unwrap();
    assert!(
        image.starts_with("rust:1.95"),
        "build on rust:1.95…, not {image}"
    );
    let stage_name = match (from_words.next(), from_words.next()) {
        (Some(r#as), Some(name)) if r#as.eq_ignore_ascii_case("as") => name.to_string(),
        _ => panic!("the build stage is named (`FROM … AS build`): {from}"),
    };
    assert!(
        find(build, "RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked")),
        "the build stage runs `cargo build --release --locked`"
    );
    let build_packages = apt_packages(build);
    let mut wanted = setup_dev_packages();
    assert!(
        wanted.contains("libgstreamer1.0-dev"),
        "scripts/setup lists its -dev packages: {wanted:?}"
    );
    wanted.insert("pkg-config".into());
    let missing: Vec<_> = wanted.difference(&build_packages).collect();
    assert!(
        missing.is_empty(),
        "the build stage lacks {missing:?} (scripts/setup's build packages)"
    );

    let runtime_image = find(runtime, "FROM")[0];
    let runtime_image = runtime_image.split_whitespace().next().unwrap();
    assert!(
        runtime_image.starts_with("debian:") && runtime_image.ends_with("-slim"),
        "run on debian:*-slim, not {runtime_image}"
    );
    // The same Debian release on both sides (glibc, GStreamer ABI).
    let release = runtime_image
        .trim_start_matches("debian:")
        .trim_end_matches("-slim");
    assert!(
        image.ends_with(&format!("-{release}")),
        "build ({image}) and runtime ({runtime_image}) use the same Debian release"
    );

    assert!(
        find(runtime, "COPY")
            .iter()
            .any(|c| c.contains(&format!("--from={stage_name}")) && c.contains("onair")),
        "the runtime copies the binary from the `{stage_name}` stage"
    );
    let user = find(runtime, "USER");
    let user = user.last().expect("the runtime stage sets USER");
    let account = user.split(':').next().unwrap();
    assert!(
        !matches!(account, "root" | "0" | ""),
        "the service runs as a non-root user, not `{user}`"
    );
    assert_eq!(
        find(runtime, "WORKDIR").last(),
        Some(&"/var/lib/onair"),
        "runtime WORKDIR"
    );
    assert!(
        find(runtime, "RUN")
            .iter()
            .any(|r| r.contains("/var/lib/onair/recordings") && r.contains("chown")),
        "the recordings directory exists and belongs to the service user"
    );

    let healthcheck = find(runtime, "HEALTHCHECK");
    let healthcheck = healthcheck.last().expect("the image has a HEALTHCHECK");
    assert!(
        healthcheck.contains("curl") && healthcheck.contains("http://127.0.0.1:7880/healthz"),
        "HEALTHCHECK curls /healthz: {healthcheck}"
    );
    let exposed: BTreeSet<&str> = find(runtime, "EXPOSE")
        .into_iter()
        .flat_map(str::split_whitespace)
        .collect();
    assert!(
        exposed.contains("7880") || exposed.contains("7880/tcp"),
        "EXPOSE 7880: {exposed:?}"
    );
    assert!(exposed.contains("7882/udp"), "EXPOSE 7882/udp: {exposed:?}");
    assert!(
        find(runtime, "ENV")
            .iter()
            .any(|e| e.contains("ONAIR_SERVER__LISTEN=0.0.0.0:7880")),
        "the image listens on 0.0.0.0:7880"
    );
    assert_eq!(find(runtime, "ENTRYPOINT").last(), Some(&r#"["onair"]"#));
    assert_eq!(find(runtime, "CMD").last(), Some(&r#"["serve"]"#));
}

#[test]
fn the_runtime_image_installs_plugins_and_no_build_packages() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    let packages = apt_packages(runtime);
    for package in RUNTIME_PACKAGES {
        assert!(
            packages.contains(package),
            "the runtime stage must install {package}: {packages:?}"
        );
    }
    let build_only: Vec<_> = packages
        .iter()
        .filter(|p| {
            p.ends_with("-dev")
                || matches!(
                    p.as_str(),
                    "build-essential" | "pkg-config" | "gcc" | "cargo" | "rustc"
                )
        })
        .collect();
    assert!(
        build_only.is_empty(),
        "the runtime stage installs build packages: {build_only:?}"
    );
}

/// Element names the composer and the outputs create: `REQUIRED_ELEMENTS`
/// and every literal `make("…")` / `element("…")`.
fn composer_elements() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let composer = read("src/composer/mod.rs");
    let list = composer
        .split_once("REQUIRED_ELEMENTS: &[&str] = &[")
        .expect("src/composer/mod.rs has REQUIRED_ELEMENTS")
        .1
        .split_once("];")
        .unwrap()
        .0;
    names.extend(
        list.split(',')
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    let mut files = Vec::new();
    for dir in ["src/composer", "src/outputs"] {
        rust_files(&repo().join(dir), &mut files);
    }
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for call in ["make(\"", "element(\""] {
            for (at, _) in source.match_indices(call) {
                let rest = &source[at + call.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The Debian package that owns `file`.
fn owning_package(file: &Path) -> String {
    let file = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let output = Command::new("dpkg")
        .arg("-S")
        .arg(&file)
        .output()
        .expect("dpkg is available (a Debian machine, as scripts/setup expects)");
    assert!(
        output.status.success(),
        "no Debian package owns {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .split_once(':')
        .map(|(p, _)| p.trim().to_string())
        .unwrap()
}

/// Each element the composer makes comes from a package the runtime stage
/// installs (or from GStreamer's core, which every plugin package pulls in).
/// Asks this machine's GStreamer and dpkg where each element lives.
#[test]
fn the_runtime_image_has_every_gstreamer_element_the_composer_makes() {
    use gstreamer::prelude::*;
    gstreamer::init().unwrap();
    let stages = dockerfile();
    let mut installed = apt_packages(stages.last().unwrap());
    installed.insert("libgstreamer1.0-0".into());
    let elements = composer_elements();
    assert!(
        elements.len() > 20 && elements.contains("x264enc") && elements.contains("rtmp2sink"),
        "found the composer's elements: {elements:?}"
    );
    let mut missing = Vec::new();
    for element in &elements {
        let factory = gstreamer::ElementFactory::find(element).unwrap_or_else(|| {
            panic!("GStreamer element `{element}` is not installed here (run scripts/setup)")
        });
        let plugin = factory.plugin().expect("a factory belongs to a plugin");
        let file = plugin.filename().expect("a plugin is a file");
        let package = owning_package(&file);
        if !installed.contains(&package) {
            missing.push(format!("{element} ({package})"));
        }
    }
    assert!(
        missing.is_empty(),
        "the runtime image lacks the packages of: {missing:?}"
    );
}

/// Top-level repository entries the build reads: what `include_str!`,
/// `include_bytes!` and `sqlx::migrate!` pull in, and the manifests.
fn compile_time_inputs() -> BTreeSet<String> {
    let mut inputs: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "src"].map(String::from).into();
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for macro_call in ["include_str!(\"", "include_bytes!(\"", "migrate!(\""] {
            for (at, _) in source.match_indices(macro_call) {
                let rest = &source[at + macro_call.len()..];
                let literal = &rest[..rest.find('"').unwrap()];
                // include_* paths are relative to the file, migrate! to the manifest.
                let base = if macro_call.starts_with("migrate") {
                    repo()
                } else {
                    file.parent().unwrap().to_path_buf()
                };
                let target = normalize(&base.join(literal));
                let relative = target.strip_prefix(repo()).unwrap_or_else(|_| {
                    panic!(
                        "{} includes {literal} outside the repository",
                        file.display()
                    )
                });
                let top = relative.components().next().unwrap();
                inputs.insert(top.as_os_str().to_string_lossy().into_owned());
            }
        }
    }
    inputs
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_build_stage_copies_everything_the_binary_compiles_in() {
    let inputs = compile_time_inputs();
    for expected in ["config", "templates", "layouts", "migrations", "assets"] {
        assert!(
            inputs.contains(expected),
            "expected `{expected}` among the compiled-in inputs: {inputs:?}"
        );
    }
    let stages = dockerfile();
    let copied: BTreeSet<String> = find(&stages[0], "COPY")
        .into_iter()
        .filter(|c| !c.starts_with("--from"))
        .flat_map(|c| {
            let words: Vec<&str> = c
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| w.trim_start_matches("./").trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let ignored: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(|l| {
            l.trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches("/**")
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    for input in &inputs {
        assert!(
            copied.contains(input) || copied.contains("."),
            "the build stage does not COPY `{input}`, which the binary compiles in (copied: {copied:?})"
        );
        assert!(
            !ignored.contains(input),
            ".dockerignore excludes `{input}`, which the build needs"
        );
    }
    for excluded in ["target", ".git", ".env", "recordings", "data"] {
        assert!(
            ignored.contains(excluded),
            ".dockerignore must exclude `{excluded}`: {ignored:?}"
        );
    }
    assert!(
        ignored.contains("node_modules") || ignored.contains("**/node_modules"),
        ".dockerignore must exclude node_modules"
    );
}

// ---------------------------------------------------------------------------
// The same configuration, outside containers
// ---------------------------------------------------------------------------

/// Points URLs at compose service names (`http://minio:9000`,
/// `…@postgres:5432/…`) to this machine instead.
fn to_localhost(value: &str, services: &[&str]) -> String {
    let mut value = value.to_string();
    for service in services {
        for (before, after) in [("//", ":"), ("//", "/"), ("@", ":"), ("@", "/")] {
            value = value.replace(
                &format!("{before}{service}{after}"),
                &format!("{before}127.0.0.1{after}"),
            );
        }
        if value.ends_with(&format!("//{service}")) {
            let cut = value.len() - service.len();
            value.replace_range(cut.., "127.0.0.1");
        }
    }
    value
}

/// Kills the server if a test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Drops the test database when the test ends, passed or failed (after the
/// server, which is declared later and so dropped first).
struct Database {
    base: String,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop cannot await; a thread of its own runs the statement.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(admin(
                &base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ))
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("could not drop the test database {}", self.name);
        }
    }
}

async fn admin(base: &str, sql: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(base)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test Postgres at DATABASE_URL: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn onair_starts_outside_containers_from_the_compose_environment() {
    let compose = compose();
    let vars = env_example();
    let services: Vec<&str> = compose["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(Value::as_str)
        .collect();
    let mut env: BTreeMap<String, String> = environment(service(&compose, "onair"))
        .into_iter()
        .map(|(k, v)| {
            let value = to_localhost(&interpolate(&v, &vars), &services);
            (k, value)
        })
        .collect();
    assert!(
        env.values()
            .all(|v| !services.iter().any(|s| v.contains(&format!("//{s}:")))),
        "service names left in {env:?}"
    );

    // This machine's test database, fresh, instead of the compose Postgres.
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("onair_deploy_{}", std::process::id());
    admin(&base, &format!("DROP DATABASE IF EXISTS {name}")).await;
    admin(&base, &format!("CREATE DATABASE {name}")).await;
    let _database = Database {
        base: base.clone(),
        name: name.clone(),
    };
    let mut database = url::Url::parse(&base).expect("DATABASE_URL is a URL");
    database.set_path(&format!("/{name}"));
    env.insert("DATABASE_URL".into(), database.to_string());
    // A free port on loopback; media on any free UDP port.
    let port = free_port();
    env.insert("ONAIR_SERVER__LISTEN".into(), format!("127.0.0.1:{port}"));
    env.insert("ONAIR_SFU__UDP_PORT".into(), "0".into());

    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("onair.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env_clear()
        .envs(&env)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for inherited in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(inherited) {
            command.env(inherited, value);
        }
    }
    let mut server = Server(command.spawn().unwrap());
    let server_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let base_url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base_url}/readyz")).send().await
            && response.status() == reqwest::StatusCode::OK
        {
            break;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!(
                "onair exited ({status}) with the compose configuration:\n{}",
                server_log()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "/readyz did not answer 200 within 60 s:\n{}",
            server_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The API key pair of .env.example works, and only it.
    let keys = onair::config::parse_key_list(&env["ONAIR_KEYS"]).unwrap();
    let (key, secret) = keys.iter().next().unwrap();
    let list = format!("{base_url}/api/video/livestream");
    let response = client
        .get(&list)
        .basic_auth(key, Some(secret.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        reqwest::StatusCode::OK,
        "{}",
        server_log()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body.is_object() || body.is_array(), "{body}");
    for (user, password) in [(key.as_str(), "wrong-secret"), ("devkey", "secret")] {
        let refused = client
            .get(&list)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused.status(),
            reqwest::StatusCode::UNAUTHORIZED,
            "{user}:{password} must be refused"
        );
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "onair did not stop within 20 s of SIGTERM:\n{}",
            server_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit {status}:\n{}", server_log());
}
