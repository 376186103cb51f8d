//! The house rules that no compiler checks: the code map of `ARCHITECTURE.md` is what the code
//! under `src/` does (every module is on the map, uses only the modules above it, and nothing
//! its "must not know" column names), and the OpenAPI document bounds every value it describes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// A module of the crate and what its source names.
struct Module {
    /// `platform::db`, from `src/platform/db.rs`.
    path: String,
    /// Its source, comments left out.
    code: String,
}

/// Every `.rs` file under `src/` except the crate's roots and the folders' `mod.rs` (which only
/// declare their modules).
fn modules() -> Vec<Module> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a readable directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|file| {
            let relative = file.strip_prefix(&src).ok()?.with_extension("");
            let parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(parts.as_slice(), [root] if root == "lib" || root == "main")
                || parts.last().is_some_and(|p| p == "mod")
            {
                return None;
            }
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            Some(Module {
                path: parts.join("::"),
                code: without_comments(&text),
            })
        })
        .collect()
}

/// The source without its comments (doc comments name modules they do not use).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                ""
            } else {
                // A `//` after code, outside a string: good enough for this crate's sources,
                // whose strings hold URLs only as `://`.
                match line.find(" // ") {
                    Some(at) => &line[..at],
                    None => line,
                }
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path after `crate::` or `$crate::` in `code`, each item of a `use` group spelled out:
/// `use crate::a::{b::{self, C}, d};` names `a::b`, `a::b::C` and `a::d`.
fn crate_paths(code: &str) -> Vec<String> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head = tree[..open].trim().trim_end_matches("::");
            let prefix = join(prefix, head);
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut depth = 0;
            let mut item = String::new();
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&prefix, &item, out);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            expand(&prefix, &item, out);
        } else {
            let item = tree.split(" as ").next().unwrap_or_default().trim();
            let item = item.trim_end_matches("::self").trim_end_matches("self");
            let path = join(prefix, item.trim_end_matches("::"));
            if !path.is_empty() {
                out.push(path);
            }
        }
    }
    fn join(prefix: &str, rest: &str) -> String {
        match (prefix.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_owned(),
            (_, true) => prefix.to_owned(),
            _ => format!("{prefix}::{rest}"),
        }
    }
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let before_ok = at == 0 || {
            let c = rest.as_bytes()[at - 1] as char;
            !(c.is_alphanumeric() || c == '_')
        };
        if before_ok {
            if after.starts_with('{') {
                // A group: up to its matching brace.
                let mut depth = 0;
                let mut end = after.len();
                for (i, c) in after.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                expand("", &after[..end], &mut out);
            } else {
                // A path, up to the first character that cannot be in one; a group after
                // `::` is taken whole.
                let mut end = 0;
                let bytes = after.as_bytes();
                while end < bytes.len() {
                    let c = bytes[end] as char;
                    if c.is_alphanumeric() || c == '_' || c == ':' {
                        end += 1;
                    } else {
                        break;
                    }
                }
                let path = &after[..end];
                if path.ends_with("::") && after[end..].starts_with('{') {
                    let group = &after[end..];
                    let close = matching_brace(group);
                    expand(path.trim_end_matches("::"), &group[..close], &mut out);
                } else {
                    let bang = after[end..].starts_with('!');
                    let path = path.trim_end_matches(':');
                    out.push(if bang {
                        format!("{path}!")
                    } else {
                        path.to_owned()
                    });
                }
            }
        }
        rest = after;
    }
    out
}

fn matching_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The modules each module uses: every path resolved to the longest module it starts with, and
/// every exported macro (`crate::name!`) to the module that defines it.
fn module_graph(modules: &[Module]) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeSet<&str> = modules.iter().map(|m| m.path.as_str()).collect();
    let mut macros = BTreeMap::new();
    for module in modules {
        let mut rest = module.code.as_str();
        while let Some(at) = rest.find("#[macro_export]") {
            rest = &rest[at..];
            if let Some(def) = rest.find("macro_rules!") {
                let name: String = rest[def + "macro_rules!".len()..]
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                macros.insert(name, module.path.clone());
            }
            rest = &rest["#[macro_export]".len()..];
        }
    }
    modules
        .iter()
        .map(|module| {
            let mut uses = BTreeSet::new();
            for path in crate_paths(&module.code) {
                let used = match path.strip_suffix('!') {
                    Some(name) => macros.get(name).cloned(),
                    None => {
                        let parts: Vec<&str> = path.split("::").collect();
                        (1..=parts.len())
                            .rev()
                            .map(|n| parts[..n].join("::"))
                            .find(|candidate| names.contains(candidate.as_str()))
                    }
                };
                if let Some(used) = used.filter(|u| *u != module.path) {
                    uses.insert(used);
                }
            }
            (module.path.clone(), uses)
        })
        .collect()
}

/// A row of the code map: its module, what it must not know, and its place from the top.
struct Row {
    module: String,
    must_not_know: Vec<String>,
}

/// The code map's rows, in order: the table under "## Code map" whose first column names one
/// module in backticks.
fn code_map() -> Vec<Row> {
    let map =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md is readable");
    let section = map
        .split("## Code map")
        .nth(1)
        .expect("ARCHITECTURE.md has a code map")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            Row {
                module: ticked(cells[1]).into_iter().next().unwrap_or_default(),
                must_not_know: ticked(cells.get(3).copied().unwrap_or_default()),
            }
        })
        .collect()
}

/// What is wrong between the map and the code: modules missing from either, a module that uses
/// one below it, and one that knows what its row says it must not.
fn map_violations(modules: &[Module], rows: &[Row]) -> Vec<String> {
    let graph = module_graph(modules);
    let place: BTreeMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| (row.module.as_str(), i))
        .collect();
    let mut wrong = Vec::new();
    for module in modules {
        if !place.contains_key(module.path.as_str()) {
            wrong.push(format!("`{}` is not on the map", module.path));
        }
    }
    for row in rows {
        if !graph.contains_key(&row.module) {
            wrong.push(format!(
                "the map names `{}`, which is no module",
                row.module
            ));
        }
    }
    for (i, row) in rows.iter().enumerate() {
        let Some(uses) = graph.get(&row.module) else {
            continue;
        };
        for used in uses {
            match place.get(used.as_str()) {
                Some(j) if *j < i => {}
                Some(_) => wrong.push(format!(
                    "`{}` uses `{used}`, which the map lists after it",
                    row.module
                )),
                None => {}
            }
        }
        let code = &modules
            .iter()
            .find(|m| m.path == row.module)
            .map(|m| m.code.clone())
            .unwrap_or_default();
        for forbidden in &row.must_not_know {
            let is_module = graph
                .keys()
                .any(|m| m == forbidden || m.starts_with(&format!("{forbidden}::")));
            let knows = if is_module {
                uses.iter()
                    .any(|u| u == forbidden || u.starts_with(&format!("{forbidden}::")))
            } else {
                // An outside crate: named in a path or a `use`.
                code.contains(&format!("{forbidden}::"))
            };
            if knows {
                wrong.push(format!("`{}` knows `{forbidden}`", row.module));
            }
        }
    }
    wrong
}

#[test]
fn the_code_map_is_what_the_code_does() {
    let modules = modules();
    let rows = code_map();
    assert!(modules.len() > 20, "the source files were found");
    assert!(rows.len() > 20, "the map's rows were read");
    assert!(
        module_graph(&modules)["schedule::rounds"].contains("schedule::speakers"),
        "the scanner sees imports"
    );

    let wrong = map_violations(&modules, &rows);

    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md and src/ disagree:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_map_check_finds_what_breaks_the_map() {
    let module = |path: &str, code: &str| Module {
        path: path.to_owned(),
        code: code.to_owned(),
    };
    let row = |module: &str, must_not_know: &[&str]| Row {
        module: module.to_owned(),
        must_not_know: must_not_know.iter().map(|s| (*s).to_owned()).collect(),
    };
    let modules = [
        module("low", "pub fn f() {}"),
        module("mid", "use crate::{low, top::X};\nfn g() { diesel::x(); }"),
        module(
            "top",
            "#[macro_export]\nmacro_rules! m { () => {} }\nstruct X;",
        ),
        module("off", "fn h() { crate::m!(); }"),
    ];
    let rows = [
        row("low", &[]),
        row("mid", &["diesel", "low"]),
        row("top", &[]),
        row("gone", &[]),
    ];

    let wrong = map_violations(&modules, &rows);

    assert_eq!(
        wrong,
        vec![
            "`off` is not on the map",
            "the map names `gone`, which is no module",
            "`mid` uses `top`, which the map lists after it",
            "`mid` knows `diesel`",
            "`mid` knows `low`",
        ]
    );
    assert_eq!(
        crate_paths(
            "use crate::{db::{self, X}, error::E};\nlet x = $crate::cache::Key;\ncrate::m!();"
        ),
        vec!["db", "db::X", "error::E", "cache::Key", "m!"]
    );
    assert_eq!(
        module_graph(&modules)["off"],
        BTreeSet::from(["top".to_owned()])
    );
}

/// Every string, integer, number and array schema in `value` that lacks its bounds, by where
/// it is.
fn unbounded(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let types: Vec<&str> = match map.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let fixed = map.contains_key("enum") || map.contains_key("const");
            for kind in types {
                // Each bound, with the keywords that state it: an exclusive bound is a bound
                // (a schema states one or the other).
                let bounds: &[&[&str]] = match kind {
                    "string" if !fixed => &[&["maxLength"]],
                    "integer" | "number" if !fixed => &[
                        &["minimum", "exclusiveMinimum"],
                        &["maximum", "exclusiveMaximum"],
                    ],
                    "array" => &[&["maxItems"]],
                    _ => &[],
                };
                for keywords in bounds {
                    if !keywords.iter().any(|keyword| map.contains_key(*keyword)) {
                        out.push(format!("{at}: {kind} without {}", keywords[0]));
                    }
                }
            }
            for (key, child) in map {
                // Examples are data, not schemas.
                if key != "example" && key != "examples" {
                    unbounded(child, &format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unbounded(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_value_the_document_describes_has_its_bounds() {
    let document = lhs_rounds::app::openapi::document();
    let mut missing = Vec::new();

    unbounded(
        &document["components"]["schemas"],
        "#/components/schemas",
        &mut missing,
    );
    unbounded(&document["paths"], "#/paths", &mut missing);

    assert!(
        missing.is_empty(),
        "unbounded schemas:\n{}",
        missing.join("\n")
    );
    let mut sample = Vec::new();
    unbounded(
        &serde_json::json!({"type": ["string", "null"], "items": {"type": "integer", "minimum": 1}}),
        "#",
        &mut sample,
    );
    assert_eq!(
        sample,
        vec![
            "#: string without maxLength",
            "#/items: integer without maximum"
        ]
    );
    let mut numbers = Vec::new();
    unbounded(
        &serde_json::json!({"anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": 5},
            {"type": "number", "maximum": 5}
        ]}),
        "#",
        &mut numbers,
    );
    assert_eq!(numbers, vec!["#/anyOf/1: number without minimum"]);
}

#[test]
fn open_operations_say_so_and_the_rest_need_the_bearer_token() {
    let document = lhs_rounds::app::openapi::document();

    assert_eq!(document["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        document["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([])
    );
    assert_eq!(document["servers"][0]["url"], "/");
    let bearer = document["components"]["securitySchemes"]["bearer"]["description"]
        .as_str()
        .unwrap_or_default();
    // Spelled as the OWASP ruleset for Spectral looks for it (owasp:api2:2023-jwt-best-practices).
    assert!(
        bearer.contains("RFC8725") && bearer.contains("exp"),
        "{bearer}"
    );
}
