//! The house rules that no compiler checks: the modules under `src/` form no cycle, the OpenAPI
//! document bounds every value it describes, and the linker lays out code as the release build's
//! layout script (`.cargo/startup-order.ld`) says.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Each module under `src/` and the modules it names (`crate::x`, `use crate::{x, y}`).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().and_then(|e| e.to_str()) != Some("rs") || stem == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        sources.insert(stem.to_owned(), text);
    }
    let modules: BTreeSet<String> = sources.keys().filter(|m| *m != "lib").cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, text) in &sources {
        if module == "lib" {
            continue;
        }
        let mut uses = BTreeSet::new();
        for name in referenced_modules(text) {
            if modules.contains(&name) && name != *module {
                uses.insert(name);
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// The first path segment after every `crate::`, including each item of `crate::{a, b::c}`.
fn referenced_modules(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: skip nested braces.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.push(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            names.push(first_segment(&item));
        } else {
            names.push(first_segment(rest));
        }
    }
    names
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_under_src_form_no_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "the source files were found: {graph:?}");
    assert!(
        graph["rounds"].contains("speakers"),
        "the scanner sees imports"
    );

    let cycle = find_cycle(&graph);

    assert!(
        cycle.is_none(),
        "modules import each other in a circle: {}",
        cycle.unwrap_or_default().join(" -> ")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();

    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        referenced_modules("use crate::{db::{self, X}, error::E};\nlet x = crate::cache::Key;"),
        vec!["db", "error", "cache"]
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
                let missing: &[&str] = match kind {
                    "string" if !fixed => &["maxLength"],
                    "integer" | "number" if !fixed => &["minimum", "maximum"],
                    "array" => &["maxItems"],
                    _ => &[],
                };
                for bound in missing {
                    if !map.contains_key(*bound) {
                        out.push(format!("{at}: {kind} without {bound}"));
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
    assert!(
        bearer.contains("RFC 8725") && bearer.contains("exp"),
        "{bearer}"
    );
}

/// The linker script release builds on Linux hand the linker (`.cargo/startup-order.ld`, see
/// `build.rs`) is one the system linker reads, and it puts the functions it lists before the
/// rest of the code. A C program stands in for the service: linking the release binary takes
/// minutes.
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_release_code_layout_puts_the_listed_functions_first() {
    use std::process::Command;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cargo/startup-order.ld");
    let text = std::fs::read_to_string(&script).expect(".cargo/startup-order.ld is readable");
    let listed = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("*(.text."))
        .filter_map(|rest| rest.split(' ').next())
        .find(|name| {
            !name.is_empty()
                && *name != "main"
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .expect("the script lists a function a C program can define");
    let dir = tempfile::tempdir().expect("a scratch directory");
    let source = dir.path().join("probe.c");
    let program = dir.path().join("probe");
    std::fs::write(
        &source,
        format!(
            "int not_listed(void) {{ return 1; }}\n\
             int {listed}(void) {{ return 2; }}\n\
             int main(void) {{ return not_listed() + {listed}() - 3; }}\n"
        ),
    )
    .expect("the probe's source is written");
    let linked = Command::new("cc")
        .args(["-O0", "-ffunction-sections", "-o"])
        .arg(&program)
        .arg(&source)
        .arg(format!("-Wl,-T,{}", script.display()))
        .output()
        .expect("cc runs");
    assert!(
        linked.status.success(),
        "the linker refused the script: {}",
        String::from_utf8_lossy(&linked.stderr)
    );
    assert!(Command::new(&program)
        .status()
        .expect("the probe runs")
        .success());
    let symbols = Command::new("nm").arg(&program).output().expect("nm runs");
    let address = |name: &str| {
        String::from_utf8_lossy(&symbols.stdout)
            .lines()
            .find_map(|line| {
                let mut parts = line.split_whitespace();
                let address = parts.next()?;
                (parts.nth(1)? == name).then(|| u64::from_str_radix(address, 16).ok())?
            })
            .unwrap_or_else(|| panic!("{name} is in the probe"))
    };
    assert!(
        address(listed) < address("not_listed"),
        "{listed}, which the script lists, is laid out before a function it does not list"
    );
}
