//! The hand-kept `openapi.yaml` describes exactly the routes the router serves: the same
//! methods and path templates as [`ROUTES`] (the list the router is built from), and each
//! operation declares exactly its template's path parameters.

use std::collections::BTreeSet;

use dakoku_admin_api::{OPENAPI, ROUTES};
use yaml_rust2::{Yaml, YamlLoader};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Yaml {
    YamlLoader::load_from_str(OPENAPI)
        .expect("openapi.yaml parses")
        .remove(0)
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Yaml, node: &'a Yaml) -> &'a Yaml {
    match node["$ref"].as_str() {
        Some(reference) => {
            let mut target = doc;
            for part in reference.trim_start_matches("#/").split('/') {
                target = &target[part];
            }
            assert!(!target.is_badvalue(), "dangling $ref {reference}");
            target
        }
        None => node,
    }
}

fn template_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_owned)
        .collect()
}

#[test]
fn openapi_lists_exactly_the_served_routes() {
    let doc = doc();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let paths = doc["paths"].as_hash().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path key");
        for (method, _) in item.as_hash().expect("path item") {
            let method = method.as_str().expect("method key");
            if METHODS.contains(&method) {
                documented.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(served.len(), ROUTES.len(), "a route is listed twice");
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "served but not in openapi.yaml: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in openapi.yaml but not served: {extra:?}"
    );
}

#[test]
fn each_operation_declares_its_path_parameters_and_an_error_shape() {
    let doc = doc();
    for route in ROUTES {
        let operation = &doc["paths"][route.path][route.method.to_lowercase().as_str()];
        let declared: BTreeSet<String> = operation["parameters"]
            .as_vec()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| resolve(&doc, p))
            .filter(|p| p["in"].as_str() == Some("path"))
            .map(|p| p["name"].as_str().expect("parameter name").to_owned())
            .collect();
        assert_eq!(
            declared,
            template_params(route.path),
            "{} {}",
            route.method,
            route.path
        );
        let responses = operation["responses"].as_hash().expect("responses");
        for (status, response) in responses {
            let status = status.as_str().expect("quoted status");
            let response = resolve(&doc, response);
            assert!(
                response["description"].as_str().is_some(),
                "{} {} {status}: no description",
                route.method,
                route.path
            );
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"].as_str(),
                    Some("#/components/schemas/Error"),
                    "{} {} {status}: errors use the Error shape",
                    route.method,
                    route.path
                );
            }
        }
        if route.path.starts_with("/v1/") {
            for status in ["401", "403", "422", "503"] {
                assert!(
                    !operation["responses"][status].is_badvalue(),
                    "{} {} lacks {status}",
                    route.method,
                    route.path
                );
            }
        }
    }
}
