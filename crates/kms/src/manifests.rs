//! Reading Kubernetes manifests from files: multi-document YAML (JSON is YAML), `kind: List`
//! flattened, empty documents skipped.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The largest input file read; a Kubernetes object cannot exceed ~1.5 MB in etcd anyway.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path}: document {index} is not valid YAML: {message}")]
    Yaml { path: String, index: usize, message: String },
}

/// One document and where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub source: String,
    pub value: Value,
}

impl Document {
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(Value::as_str)
    }

    fn api_version(&self) -> Option<&str> {
        self.value.get("apiVersion").and_then(Value::as_str)
    }

    pub fn is_ceph_cluster(&self) -> bool {
        self.kind() == Some("CephCluster") && self.api_version().is_some_and(|v| v.starts_with("ceph.rook.io/"))
    }

    pub fn is_secret(&self) -> bool {
        self.kind() == Some("Secret") && self.api_version() == Some("v1")
    }
}

/// Reads every document from files, directories (`*.yaml`, `*.yml`, `*.json`, recursively, in
/// name order) and `-` (standard input).
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Document>, ManifestError> {
    let mut docs = Vec::new();
    for path in paths {
        for file in expand(path)? {
            let text = read_text(&file)?;
            parse_documents(&file.display().to_string(), &text, &mut docs)?;
        }
    }
    Ok(docs)
}

fn expand(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    if path.as_os_str() == "-" || !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let read_err = |source| ManifestError::Read { path: path.display().to_string(), source };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(path).map_err(read_err)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            files.extend(expand(&entry)?);
        } else if entry.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            files.push(entry);
        }
    }
    Ok(files)
}

fn read_text(path: &Path) -> Result<String, ManifestError> {
    let name = path.display().to_string();
    let read_err = |source| ManifestError::Read { path: name.clone(), source };
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(read_err)?;
    } else {
        std::fs::File::open(path)
            .map_err(read_err)?
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ManifestError::TooLarge { path: name });
    }
    String::from_utf8(bytes).map_err(|_| ManifestError::Yaml {
        path: name,
        index: 1,
        message: "the file is not UTF-8 text".into(),
    })
}

/// Parses a multi-document YAML text, appending its documents to `out`.
pub fn parse_documents(source: &str, text: &str, out: &mut Vec<Document>) -> Result<(), ManifestError> {
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| ManifestError::Yaml {
            path: source.to_string(),
            index: i + 1,
            message: e.to_string().chars().take(200).collect(),
        })?;
        push(source, value, out);
    }
    Ok(())
}

fn push(source: &str, value: Value, out: &mut Vec<Document>) {
    match value {
        Value::Null => {}
        Value::Object(ref m) if m.get("kind").and_then(Value::as_str) == Some("List") => {
            if let Some(Value::Array(items)) = m.get("items") {
                for item in items.clone() {
                    push(source, item, out);
                }
            }
        }
        value => out.push(Document { source: source.to_string(), value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_lists() {
        let mut docs = Vec::new();
        let text = "---\nkind: Secret\napiVersion: v1\n---\n---\nkind: List\nitems:\n- kind: CephCluster\n  apiVersion: ceph.rook.io/v1\n";
        parse_documents("t", text, &mut docs).unwrap();
        assert_eq!(docs.len(), 2);
        assert!(docs[0].is_secret());
        assert!(docs[1].is_ceph_cluster());
    }

    #[test]
    fn bad_yaml_names_the_document() {
        let err = parse_documents("f.yaml", "a: 1\n---\n: : [\n", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().starts_with("f.yaml: document 2 is not valid YAML"), "{err}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 1..10 {
            let prev = if i == 1 { "a".to_string() } else { format!("a{}", i - 1) };
            bomb.push_str(&format!(
                "a{i}: &a{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
        }
        assert!(parse_documents("bomb", &bomb, &mut Vec::new()).is_err());
    }
}
