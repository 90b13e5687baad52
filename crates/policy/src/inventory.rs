//! `data.inventory`: the cluster objects Gatekeeper syncs for referential policies, laid out as
//! `cluster[apiVersion][kind][name]` and `namespace[ns][apiVersion][kind][name]`, plus the
//! Namespace objects `namespaceSelector` needs.

use crate::error::{PolicyError, Result};
use crate::util::{describe, group_version, str_at};
use serde_json::{Map, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub(crate) struct Inventory {
    tree: Map<String, Value>,
    namespaces: HashMap<String, Value>,
}

impl Inventory {
    pub(crate) fn from_objects(objects: Vec<Value>) -> Result<Self> {
        let mut inv = Self::default();
        for obj in objects {
            inv.add(obj)?;
        }
        Ok(inv)
    }

    fn add(&mut self, obj: Value) -> Result<()> {
        if !obj.is_object() {
            return Err(PolicyError::InvalidInventory(format!(
                "expected a Kubernetes object, found {}",
                describe(&obj)
            )));
        }
        let api_version = str_at(&obj, &["apiVersion"]).unwrap_or("").to_string();
        let kind = str_at(&obj, &["kind"]).unwrap_or("").to_string();
        let name = str_at(&obj, &["metadata", "name"]).unwrap_or("").to_string();
        let namespace = str_at(&obj, &["metadata", "namespace"]).unwrap_or("").to_string();
        let (group, version) = group_version(&api_version);
        if version.is_empty() || kind.is_empty() {
            return Err(PolicyError::InvalidInventory(format!(
                "object {name:?} has no apiVersion or kind"
            )));
        }
        if kind == "Namespace" && group.is_empty() {
            self.namespaces.insert(name.clone(), obj.clone());
        }
        let path: Vec<&str> = if namespace.is_empty() {
            vec!["cluster", &api_version, &kind]
        } else {
            vec!["namespace", &namespace, &api_version, &kind]
        };
        let mut node = &mut self.tree;
        for key in path {
            let entry = node
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            node = match entry {
                Value::Object(map) => map,
                // Only objects are ever inserted at inner levels.
                _ => {
                    return Err(PolicyError::InvalidInventory(
                        "inconsistent inventory tree".into(),
                    ));
                }
            };
        }
        node.insert(name, obj);
        Ok(())
    }

    /// The data document: `{"inventory": {...}}`.
    pub(crate) fn data_document(&self) -> regorus::Value {
        let mut root = Map::new();
        root.insert("inventory".into(), Value::Object(self.tree.clone()));
        regorus::Value::from(Value::Object(root))
    }

    pub(crate) fn namespace(&self, name: &str) -> Option<&Value> {
        self.namespaces.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn places_objects_like_gatekeeper() {
        let inv = Inventory::from_objects(vec![
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}}),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb", "namespace": "a"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
        ])
        .unwrap();
        let tree = Value::Object(inv.tree.clone());
        assert!(
            tree.pointer("/cluster/storage.k8s.io~1v1/StorageClass/fast")
                .is_some()
        );
        assert!(
            tree.pointer("/namespace/a/policy~1v1/PodDisruptionBudget/pdb")
                .is_some()
        );
        assert!(tree.pointer("/cluster/v1/Namespace/a").is_some());
        assert!(inv.namespace("a").is_some());
        assert!(Inventory::from_objects(vec![json!({"kind": "X"})]).is_err());
        assert!(Inventory::from_objects(vec![json!("x")]).is_err());
    }
}
