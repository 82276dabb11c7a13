//! The layer rule of `src/lib.rs`, checked on the source: a module imports
//! only from its own layer and the layers below it, and no two files import
//! each other in a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers from the bottom up; a layer may import those with a lower rank.
/// `storage` and `io` share a rank but may not use each other.
const LAYERS: &[(&str, u8)] = &[
    ("root", 0),
    ("storage", 1),
    ("io", 1),
    ("index", 2),
    ("segment", 3),
    ("collection", 4),
    ("investigate", 5),
    ("api", 6),
    ("cluster", 7),
    ("tools", 8),
    ("cli", 9),
];
const ROOT_MODULES: &[&str] = &["pb", "error", "validate", "metrics"];

fn rank(layer: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(l, _)| *l == layer)
        .unwrap_or_else(|| panic!("src/{layer}/ is not a layer of src/lib.rs"))
        .1
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file as a module path: `collection/mod.rs` → `collection`,
/// `index/hnsw.rs` → `index/hnsw`, `pb.rs` → `pb`.
fn module_of(rel: &str) -> String {
    rel.trim_end_matches(".rs")
        .trim_end_matches("/mod")
        .to_string()
}

fn layer_of(module: &str) -> &str {
    match module.split_once('/') {
        Some((layer, _)) => layer,
        None if ROOT_MODULES.contains(&module) => "root",
        None => module,
    }
}

/// The modules that `crate::a::b` paths in non-test code refer to.
fn imports(src: &Path, text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let mut parts = rest.split("::").map(|p| {
            p.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
        });
        let Some(Some(a)) = parts.next() else {
            continue;
        };
        let b = parts.next().flatten().unwrap_or_default();
        let file = src.join(a).join(format!("{b}.rs"));
        if !b.is_empty() && file.exists() {
            out.insert(format!("{a}/{b}"));
        } else {
            out.insert(a.to_string());
        }
    }
    out
}

fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = BTreeMap::new();
    for f in files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let me = module_of(&rel);
        let mut deps = imports(&src, &std::fs::read_to_string(&f).unwrap());
        deps.remove(&me);
        graph.insert(me, deps);
    }
    graph
}

#[test]
fn no_module_imports_a_higher_layer() {
    let mut bad = Vec::new();
    for (module, deps) in import_graph() {
        let mine = layer_of(&module);
        for d in deps {
            let theirs = layer_of(&d);
            let sideways = mine != theirs && rank(mine) == rank(theirs) && mine != "root";
            if rank(theirs) > rank(mine) || sideways {
                bad.push(format!("{module} ({mine}) imports {d} ({theirs})"));
            }
        }
    }
    assert!(bad.is_empty(), "layer rule broken:\n{}", bad.join("\n"));
}

#[test]
fn no_import_cycles_between_files() {
    let graph = import_graph();
    assert!(graph.len() > 20, "found only {} source files", graph.len());
    // Depth-first search with colours: an edge back to a grey node is a cycle.
    fn visit<'a>(
        n: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        path.push(n);
        for d in g.get(n).into_iter().flatten() {
            if let Some(at) = path.iter().position(|p| p == d) {
                cycles.push(format!("{} -> {d}", path[at..].join(" -> ")));
            } else if !done.contains(d.as_str()) {
                visit(d, g, path, done, cycles);
            }
        }
        path.pop();
        done.insert(n);
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for n in graph.keys() {
        if !done.contains(n.as_str()) {
            visit(n, &graph, &mut Vec::new(), &mut done, &mut cycles);
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}
