//! `openapi/onair.json` describes every route the router serves, and nothing
//! else.
//!
//! Axum cannot list its routes, so the route list is read from the source:
//! every `.route("<path>", <method>(…).<method>(…))` call in `src/api/`
//! (outside `#[cfg(test)]` code). A call the scanner does not understand fails
//! the test with its file and line, so no route is skipped silently. Each
//! (path, method) must be in the document's `paths`, and each documented one
//! must exist in the source. Pages that answer HTML are documented like any
//! other route (`text/html`), so there is no exclusion list.
//!
//! The document is also checked for being well-formed (version, `$ref`s,
//! operation ids, responses, path parameters), and the running router is
//! asked for every documented operation to prove it is really routed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

/// The HTTP methods OpenAPI describes (lowercase, as in a path item).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Routes whose last path parameter is a name the handler dispatches on: the
/// document lists one path per name instead of the template. The names are
/// the string-literal match arms (`"ListRooms" => …`) of the given file.
const DISPATCHED: [(&str, &str); 2] = [
    (
        "/twirp/livekit.RoomService/{method}",
        "twirp/room_service.rs",
    ),
    ("/twirp/livekit.Egress/{method}", "twirp/egress.rs"),
];

/// A (path, method) pair, method lowercase; paths in OpenAPI syntax.
type Operation = (String, String);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn document() -> Value {
    let path = root().join("openapi/onair.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

// ---- a small Rust lexer: enough to tell code from comments and strings -----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
    /// Numbers, char literals, lifetimes: never part of what is looked for.
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn lex(source: &str, file: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                assert!(i < chars.len(), "{file}:{start_line}: unterminated comment");
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some((text, end)) = raw_string(&chars, i) {
            line += text.matches('\n').count();
            tokens.push(Token {
                tok: Tok::Str(text),
                line: start_line,
            });
            i = end;
        } else if c == '"' || (c == 'b' && at(i + 1) == '"') {
            i += if c == 'b' { 2 } else { 1 };
            let mut text = String::new();
            loop {
                assert!(i < chars.len(), "{file}:{start_line}: unterminated string");
                match chars[i] {
                    '"' => break,
                    '\\' => {
                        let escaped = at(i + 1);
                        match escaped {
                            'n' => text.push('\n'),
                            't' => text.push('\t'),
                            '\n' => {
                                // A line continuation: the next line's indentation goes too.
                                line += 1;
                                i += 2;
                                while at(i).is_whitespace() {
                                    if at(i) == '\n' {
                                        line += 1;
                                    }
                                    i += 1;
                                }
                                continue;
                            }
                            other => text.push(other),
                        }
                        i += 2;
                    }
                    ch => {
                        if ch == '\n' {
                            line += 1;
                        }
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            i += 1;
            tokens.push(Token {
                tok: Tok::Str(text),
                line: start_line,
            });
        } else if c == '\'' {
            // A char literal ('a', '\n', '\'') or a lifetime ('a, 'static).
            if at(i + 1) == '\\' {
                i += 2;
                while at(i) != '\'' {
                    assert!(i < chars.len(), "{file}:{start_line}: unterminated char");
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
            tokens.push(Token {
                tok: Tok::Other,
                line: start_line,
            });
        } else if c.is_alphabetic() || c == '_' {
            let begin = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let mut ident: String = chars[begin..i].iter().collect();
            if ident == "r" && at(i) == '#' && (at(i + 1).is_alphabetic() || at(i + 1) == '_') {
                // A raw identifier: r#type.
                i += 1;
                let begin = i;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
                ident = chars[begin..i].iter().collect();
            }
            tokens.push(Token {
                tok: Tok::Ident(ident),
                line: start_line,
            });
        } else if c.is_ascii_digit() {
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            tokens.push(Token {
                tok: Tok::Other,
                line: start_line,
            });
        } else {
            tokens.push(Token {
                tok: Tok::Punct(c),
                line: start_line,
            });
            i += 1;
        }
    }
    tokens
}

/// `r"…"`, `r#"…"#`, `br"…"`: the text and the index after it.
fn raw_string(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut i = start;
    if chars.get(i) == Some(&'b') {
        i += 1;
    }
    if chars.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if chars.get(i) != Some(&'"') {
        return None;
    }
    i += 1;
    let begin = i;
    loop {
        if i >= chars.len() {
            return None;
        }
        if chars[i] == '"' && (1..=hashes).all(|h| chars.get(i + h) == Some(&'#')) {
            let text = chars[begin..i].iter().collect();
            return Some((text, i + 1 + hashes));
        }
        i += 1;
    }
}

/// Drops `#[cfg(test)]` items (test modules, helpers): their routers are not served.
fn without_test_code(tokens: Vec<Token>) -> Vec<Token> {
    let is = |t: &Token, tok: Tok| t.tok == tok;
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let cfg_test = tokens.len() > i + 6
            && is(&tokens[i], Tok::Punct('#'))
            && is(&tokens[i + 1], Tok::Punct('['))
            && is(&tokens[i + 2], Tok::Ident("cfg".into()))
            && is(&tokens[i + 3], Tok::Punct('('))
            && is(&tokens[i + 4], Tok::Ident("test".into()))
            && is(&tokens[i + 5], Tok::Punct(')'))
            && is(&tokens[i + 6], Tok::Punct(']'));
        if !cfg_test {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        // Skip to the end of the item: its `;` or its balanced `{ … }`.
        i += 7;
        while i < tokens.len() && !matches!(tokens[i].tok, Tok::Punct('{') | Tok::Punct(';')) {
            i += 1;
        }
        if i < tokens.len() && tokens[i].tok == Tok::Punct('{') {
            i = skip_balanced(&tokens, i);
        } else {
            i += 1;
        }
    }
    out
}

/// From an opening bracket at `i`, the index after its closing one.
fn skip_balanced(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    loop {
        let Some(token) = tokens.get(i) else {
            return i;
        };
        match token.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

// ---- the routes in the source ----------------------------------------------

/// A route as written: where, its path (axum syntax) and methods.
#[derive(Debug)]
struct SourceRoute {
    at: String,
    path: String,
    methods: Vec<String>,
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every `.route(…)` call of `tokens`; panics naming `file:line` on one it cannot read.
fn routes_in(file: &str, tokens: &[Token]) -> Vec<SourceRoute> {
    let mut routes = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if token.tok != Tok::Punct('.') {
            continue;
        }
        let Some(Token {
            tok: Tok::Ident(name),
            line,
        }) = tokens.get(i + 1)
        else {
            continue;
        };
        let at = format!("{file}:{line}");
        let is_call = tokens.get(i + 2).is_some_and(|t| t.tok == Tok::Punct('('));
        match name.as_str() {
            "route" if is_call => routes.push(parse_route(&at, tokens, i + 3)),
            "nest" | "nest_service" | "route_service" | "fallback_service" if is_call => panic!(
                "{at}: `.{name}(…)` adds routes the OpenAPI sync test cannot read; \
                 extend tests/openapi.rs (or write the routes with `.route(…)`)"
            ),
            _ => {}
        }
    }
    routes
}

/// Parses `"<path>", <method>(…).<method>(…) )` starting at `i` (after `.route(`).
fn parse_route(at: &str, tokens: &[Token], mut i: usize) -> SourceRoute {
    let fail = |why: &str| -> ! {
        panic!(
            "{at}: cannot read this `.route(…)` call ({why}); the OpenAPI sync test in \
             tests/openapi.rs expects `.route(\"/path\", get(handler).post(other))`"
        )
    };
    let path = match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Str(path)) => path.clone(),
        _ => fail("the path is not a string literal"),
    };
    i += 1;
    if tokens.get(i).map(|t| &t.tok) != Some(&Tok::Punct(',')) {
        fail("expected `,` after the path");
    }
    i += 1;
    let mut methods = Vec::new();
    let mut first = true;
    loop {
        // `get`, `axum::routing::get`, or after a `.`: `post`, `layer`, …
        let mut name = match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(name)) => name.clone(),
            _ => fail("the method router is not a call like `get(handler)`"),
        };
        i += 1;
        while first
            && tokens.get(i).map(|t| &t.tok) == Some(&Tok::Punct(':'))
            && tokens.get(i + 1).map(|t| &t.tok) == Some(&Tok::Punct(':'))
        {
            name = match tokens.get(i + 2).map(|t| &t.tok) {
                Some(Tok::Ident(name)) => name.clone(),
                _ => fail("a path that does not end in a method"),
            };
            i += 3;
        }
        if tokens.get(i).map(|t| &t.tok) != Some(&Tok::Punct('(')) {
            fail(&format!("`{name}` is not called"));
        }
        i = skip_balanced(tokens, i);
        match name.as_str() {
            m if METHODS.contains(&m) => methods.push(m.to_string()),
            // Middleware on the method router: no new method.
            "layer" | "route_layer" | "with_state" if !first => {}
            "any" => fail("`any(…)` serves every method; list the methods instead"),
            other => fail(&format!("`{other}(…)` is not a method the test knows")),
        }
        first = false;
        match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Punct('.')) => i += 1,
            Some(Tok::Punct(')')) => break,
            Some(Tok::Punct(','))
                if tokens.get(i + 1).map(|t| &t.tok) == Some(&Tok::Punct(')')) =>
            {
                break;
            }
            _ => fail("unexpected tokens after the method router"),
        }
    }
    SourceRoute {
        at: at.to_string(),
        path,
        methods,
    }
}

/// axum's path syntax in OpenAPI's: `{id}` stays, `{*rest}` becomes `{rest}`.
fn openapi_path(route: &SourceRoute) -> String {
    assert!(
        route.path.starts_with('/'),
        "{}: path `{}` does not start with `/`",
        route.at,
        route.path
    );
    route
        .path
        .split('/')
        .map(|segment| {
            assert!(
                !segment.starts_with(':') && !segment.starts_with('*'),
                "{}: `{segment}` is not axum 0.8 path syntax (`{{name}}`)",
                route.at
            );
            segment.replace("{*", "{")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The string-literal match arms (`"Name" =>`) of `tokens`.
fn match_arms(tokens: &[Token]) -> Vec<String> {
    tokens
        .windows(3)
        .filter_map(|w| match (&w[0].tok, &w[1].tok, &w[2].tok) {
            (Tok::Str(name), Tok::Punct('='), Tok::Punct('>')) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Every (path, method) the source serves, with where it is written.
fn source_operations() -> BTreeMap<Operation, String> {
    let api = root().join("src/api");
    let mut files: BTreeMap<String, Vec<Token>> = BTreeMap::new();
    for path in rust_files(&api) {
        let name = path.strip_prefix(&api).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let tokens = without_test_code(lex(&text, &format!("src/api/{name}")));
        files.insert(name, tokens);
    }
    let router = files.get("mod.rs").expect("src/api/mod.rs");
    let mut operations = BTreeMap::new();
    for (name, tokens) in &files {
        let routes = routes_in(&format!("src/api/{name}"), tokens);
        if routes.is_empty() {
            continue;
        }
        if name != "mod.rs" {
            // Routes in a module the router never merges are not served.
            // `whip.rs` → `whip`; `pages/mod.rs`, `pages/index.rs` → `pages`.
            let first = name.split('/').next().unwrap_or(name);
            let module = first.trim_end_matches(".rs").to_string();
            let merged = router.windows(4).any(|w| {
                w[0].tok == Tok::Ident("merge".into())
                    && w[1].tok == Tok::Punct('(')
                    && w[2].tok == Tok::Ident(module.clone())
                    && w[3].tok == Tok::Punct(':')
            });
            assert!(
                merged,
                "src/api/{name} has routes but src/api/mod.rs has no `.merge({module}::…)`; \
                 the sync test cannot tell whether they are served"
            );
        }
        for route in routes {
            assert!(
                !route.methods.is_empty(),
                "{}: a route without methods",
                route.at
            );
            let path = openapi_path(&route);
            let dispatched = DISPATCHED.iter().find(|(template, _)| *template == path);
            let paths = match dispatched {
                Some((_, file)) => {
                    let arms = match_arms(files.get(*file).unwrap_or_else(|| {
                        panic!("DISPATCHED names src/api/{file}, which does not exist")
                    }));
                    assert!(
                        !arms.is_empty(),
                        "{}: no `\"Name\" =>` match arms found in src/api/{file}",
                        route.at
                    );
                    let prefix = path.rsplit_once('/').unwrap().0;
                    arms.iter().map(|arm| format!("{prefix}/{arm}")).collect()
                }
                None => vec![path],
            };
            for path in paths {
                for method in &route.methods {
                    let previous =
                        operations.insert((path.clone(), method.clone()), route.at.clone());
                    assert!(
                        previous.is_none(),
                        "{}: {} {path} is routed twice (also at {})",
                        route.at,
                        method.to_uppercase(),
                        previous.unwrap_or_default()
                    );
                }
            }
        }
    }
    operations
}

fn documented_operations(doc: &Value) -> BTreeSet<Operation> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .unwrap_or_else(|| panic!("{path}: not an object"));
        for key in item.keys() {
            if METHODS.contains(&key.as_str()) {
                operations.insert((path.clone(), key.clone()));
            } else {
                assert!(
                    ["parameters", "summary", "description", "servers"].contains(&key.as_str()),
                    "paths.{path}: unknown key `{key}`"
                );
            }
        }
    }
    operations
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let doc = document();
    let served = source_operations();
    let documented = documented_operations(&doc);
    assert!(
        served.len() >= 20,
        "the scanner found only {} routes: {served:?}",
        served.len()
    );
    let show = |(path, method): &Operation| format!("{} {path}", method.to_uppercase());
    let undocumented: Vec<String> = served
        .iter()
        .filter(|(op, _)| !documented.contains(*op))
        .map(|(op, at)| format!("{} ({at})", show(op)))
        .collect();
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "(none)".to_string()
        } else {
            items.join("\n  ")
        }
    };
    let stale: Vec<String> = documented
        .iter()
        .filter(|op| !served.contains_key(*op))
        .map(show)
        .collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "openapi/onair.json is out of sync with the routers in src/api/\n\
         served but not documented (add them to openapi/onair.json):\n  {}\n\
         documented but not served (remove them, or fix the path/method):\n  {}",
        list(undocumented),
        list(stale)
    );
}

#[test]
fn the_scanner_reads_every_way_routes_are_written() {
    let source = r##"
        use axum::routing::{get, post};
        // .route("/commented-out", get(nothing))
        /* .route("/block", get(nothing)) /* nested */ */
        pub fn routes() -> Router<AppState> {
            let label = "not a .route(\"/in-a-string\", get(x)) call";
            let r = r#".route("/raw", get(x))"#;
            Router::new()
                .route("/one", get(one))
                .route(
                    "/two/{id}",
                    get(|Path(id): Path<String>| async move { format!("({id}')") })
                        .post(two)
                        .layer(cors),
                )
                .route("/three/{*rest}", axum::routing::delete(three).patch(three),)
                .route("/four", post(four).put(four).head(four).options(four))
        }
        #[cfg(test)]
        mod tests {
            fn router() -> Router { Router::new().route("/test-only", get(t)) }
        }
    "##;
    let routes = routes_in("sample.rs", &without_test_code(lex(source, "sample.rs")));
    let found: Vec<(String, Vec<String>)> = routes
        .iter()
        .map(|r| (openapi_path(r), r.methods.clone()))
        .collect();
    let expected = [
        ("/one", vec!["get"]),
        ("/two/{id}", vec!["get", "post"]),
        ("/three/{rest}", vec!["delete", "patch"]),
        ("/four", vec!["post", "put", "head", "options"]),
    ];
    let expected: Vec<(String, Vec<String>)> = expected
        .into_iter()
        .map(|(p, m)| (p.to_string(), m.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(found, expected);
    // A call spread over lines is named by the line of its `.route(`.
    assert_eq!(routes[1].at, "sample.rs:10");
    assert_eq!(routes[2].at, "sample.rs:16");
}

#[test]
#[should_panic(
    expected = "sample.rs:3: cannot read this `.route(…)` call (the path is not a string literal)"
)]
fn the_scanner_refuses_a_path_it_cannot_read() {
    let source = "Router::new()\n    .route(\"/ok\", get(ok))\n    .route(PATH, get(h))";
    routes_in("sample.rs", &lex(source, "sample.rs"));
}

#[test]
#[should_panic(
    expected = "sample.rs:1: cannot read this `.route(…)` call (`method_router` is not called)"
)]
fn the_scanner_refuses_a_method_router_in_a_variable() {
    let source = ".route(\"/x\", method_router)";
    routes_in("sample.rs", &lex(source, "sample.rs"));
}

#[test]
#[should_panic(expected = "`any(…)` serves every method")]
fn the_scanner_refuses_any() {
    routes_in("sample.rs", &lex(".route(\"/x\", any(h))", "sample.rs"));
}

#[test]
#[should_panic(expected = "sample.rs:1: `.nest(…)` adds routes")]
fn the_scanner_refuses_nested_routers() {
    routes_in(
        "sample.rs",
        &lex("Router::new().nest(\"/api\", api())", "sample.rs"),
    );
}

// ---- the document is well-formed ---------------------------------------------

fn walk<'a>(value: &'a Value, at: String, visit: &mut impl FnMut(&str, &'a Value)) {
    visit(&at, value);
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                walk(child, format!("{at}/{key}"), visit);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                walk(child, format!("{at}/{index}"), visit);
            }
        }
        _ => {}
    }
}

/// Follows a `$ref` (one level) if `value` is one.
fn resolved<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("`{reference}` does not resolve")),
        None => value,
    }
}

#[test]
fn the_document_is_well_formed() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("an `openapi` version");
    assert!(
        version.starts_with("3.0.") || version.starts_with("3.1."),
        "unexpected OpenAPI version {version}"
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    // Every $ref resolves inside the document; every component is used.
    let mut referenced = BTreeSet::new();
    walk(&doc, String::new(), &mut |at, value| {
        if let Some(reference) = value.get("$ref") {
            let reference = reference
                .as_str()
                .unwrap_or_else(|| panic!("{at}: $ref not a string"));
            assert!(
                reference.starts_with("#/"),
                "{at}: `{reference}` is not a local reference"
            );
            assert!(
                doc.pointer(&reference[1..]).is_some(),
                "{at}: `{reference}` does not resolve"
            );
            referenced.insert(reference.to_string());
        }
    });
    let components = doc["components"].as_object().expect("components");
    for (kind, entries) in components {
        if kind == "securitySchemes" {
            continue;
        }
        for name in entries.as_object().unwrap().keys() {
            let reference = format!("#/components/{kind}/{name}");
            assert!(referenced.contains(&reference), "{reference} is never used");
        }
    }
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    for scheme in ["bearerAuth", "basicAuth"] {
        assert!(
            schemes.contains_key(scheme),
            "no `{scheme}` security scheme"
        );
    }
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["basicAuth"]["scheme"], "basic");

    let mut operation_ids = BTreeSet::new();
    let mut used_schemes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(
            path.starts_with('/'),
            "path `{path}` does not start with `/`"
        );
        let path_parameters: Vec<&Value> = item["parameters"]
            .as_array()
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let name = format!("{} {path}", method.to_uppercase());
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no operationId"));
            assert!(
                operation_ids.insert(id.to_string()),
                "{name}: operationId `{id}` is used twice"
            );
            assert!(operation["summary"].is_string(), "{name}: no summary");

            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{name}: no responses"));
            assert!(!responses.is_empty(), "{name}: no responses");
            for (status, response) in responses {
                let valid = status == "default"
                    || (status.len() == 3
                        && status.chars().all(|c| c.is_ascii_digit() || c == 'X'));
                assert!(valid, "{name}: `{status}` is not a status code");
                assert!(
                    resolved(&doc, response)["description"].is_string(),
                    "{name} {status}: no description"
                );
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{name}: no success response"
            );

            // Every `{param}` of the path is a required path parameter, and vice versa.
            let parameters: Vec<&Value> = path_parameters
                .iter()
                .copied()
                .chain(operation["parameters"].as_array().into_iter().flatten())
                .map(|p| resolved(&doc, p))
                .collect();
            let declared: BTreeSet<&str> = parameters
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| {
                    assert_eq!(p["required"], true, "{name}: path parameter not required");
                    p["name"].as_str().expect("parameter name")
                })
                .collect();
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(declared, in_path, "{name}: path parameters");

            let security = operation["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no `security` (use [] for none)"));
            for requirement in security {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(scheme),
                        "{name}: unknown scheme `{scheme}`"
                    );
                    used_schemes.insert(scheme.clone());
                }
            }
        }
    }
    for scheme in schemes.keys() {
        assert!(
            used_schemes.contains(scheme),
            "security scheme `{scheme}` is never used"
        );
    }
}

// ---- the running router ------------------------------------------------------

fn example_path(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => "5b0d5c47-8c1f-4a8e-9a55-0c4f3c1b2a10",
            "{room}" => "studio",
            "{identity}" => "alice",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn openapi_json_is_served_without_credentials(pool: PgPool) {
    let app = common::app(pool, common::TestRunner::new(common::Behaviour::GoLive));
    let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let served: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(
        served,
        document(),
        "the served document is openapi/onair.json"
    );
}

/// Every documented operation reaches a handler: no 405, and no `no_route`
/// 404 of an unmatched path.
#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn every_documented_operation_is_routed(pool: PgPool) {
    let app = common::app(pool, common::TestRunner::new(common::Behaviour::GoLive));
    for (path, method) in documented_operations(&document()) {
        let uri = example_path(&path);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let request = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response = app.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: the router does not serve this method"
        );
        let unrouted = String::from_utf8_lossy(&bytes).contains("\"no_route\"");
        assert!(
            !(status == StatusCode::NOT_FOUND && unrouted),
            "{method} {uri}: the router has no such path"
        );
    }
}
