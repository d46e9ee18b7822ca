//! Networks in NVlabs' pickles (stylegan2-ada-pytorch's `torch_utils.persistence`): each
//! `persistent_class` object is pickled as `_reconstruct_persistent_obj(meta)` with
//! `meta = dict(type, version, module_src, class_name, state)`, `state` being the module's
//! `__dict__` (its `_parameters`, `_buffers`, `_modules`, `_init_kwargs`, ...); plain torch
//! modules inside are `NEWOBJ` plus a `BUILD` of the same `__dict__`. The embedded source code
//! is never looked at, let alone run: the network is read as its class name, its constructor
//! arguments and its tensors.

use super::pickle::{Id, Node, Pickle, PickleError};
use super::torch_pickle::{Tensor, tensor};

type Result<T> = std::result::Result<T, PickleError>;

/// A torch module in a pickle: its class name and its `__dict__`.
pub struct Module<'p> {
    pub pickle: &'p Pickle,
    pub class_name: String,
    pub state: Id,
}

/// The module at `id`, persistent (NVlabs) or plain; `None` for anything else.
pub fn module(p: &Pickle, id: Id) -> Option<Module<'_>> {
    let Node::Object {
        callable,
        args,
        state,
        ..
    } = p.node(id)
    else {
        return None;
    };
    let (module_name, name) = p.global(*callable)?;
    let (class_name, state) =
        if (module_name, name) == ("torch_utils.persistence", "_reconstruct_persistent_obj") {
            let meta = *p.elements(*args)?.first()?;
            let class = p.str(p.get(meta, "class_name")?)?.to_string();
            (class, p.get(meta, "state")?)
        } else {
            (name.to_string(), (*state)?)
        };
    // A module's __dict__ has `_parameters`; other objects are not modules.
    p.get(state, "_parameters")?;
    Some(Module {
        pickle: p,
        class_name,
        state,
    })
}

impl Module<'_> {
    /// The constructor's keyword arguments (`_init_kwargs`) as JSON, when the module keeps
    /// them and they are plain data.
    pub fn init_kwargs(&self) -> Option<serde_json::Value> {
        let kwargs = self.pickle.get(self.state, "_init_kwargs")?;
        self.pickle.natural_json(kwargs)
    }

    /// The submodules (`_modules`), by name.
    pub fn children(&self) -> Vec<(String, Module<'_>)> {
        let p = self.pickle;
        let Some(items) = p.get(self.state, "_modules").and_then(|m| p.items(m)) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|&(k, v)| Some((p.str(k)?.to_string(), module(p, v)?)))
            .collect()
    }

    /// Every parameter and buffer of the module and its submodules, named as torch's
    /// `named_parameters` / `named_buffers` name them (`fc0.weight`), parameters first at each
    /// level, in the pickle's order.
    pub fn named_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        self.collect("", &mut out)?;
        Ok(out)
    }

    fn collect(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) -> Result<()> {
        let p = self.pickle;
        for key in ["_parameters", "_buffers"] {
            let Some(items) = p.get(self.state, key).and_then(|d| p.items(d)) else {
                continue;
            };
            for &(k, v) in items {
                let name = p
                    .str(k)
                    .ok_or_else(|| PickleError(format!("{prefix}{key}: a non-string name")))?;
                if p.node(v) == &Node::None {
                    continue; // an optional parameter left unset
                }
                let t = tensor(p, v)?
                    .ok_or_else(|| PickleError(format!("{prefix}{name}: not a tensor in {key}")))?;
                out.push((format!("{prefix}{name}"), t));
            }
        }
        for (name, child) in self.children() {
            child.collect(&format!("{prefix}{name}."), out)?;
        }
        Ok(())
    }
}

/// One network of a pickle's top-level dict: its key, class, the number of values in its
/// parameters and buffers, and its constructor arguments.
pub struct NetworkSummary {
    pub key: String,
    pub class_name: String,
    pub values: usize,
    pub init_kwargs: Option<serde_json::Value>,
}

/// The networks (modules) among the values of a pickle's top-level dict, e.g. stylegan2-ada-
/// pytorch's `dict(G, D, G_ema, augment_pipe, training_set_kwargs)`.
pub fn summarize(p: &Pickle) -> Result<Vec<NetworkSummary>> {
    let Some(items) = p.items(p.root) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for &(k, v) in items {
        let (Some(key), Some(m)) = (p.str(k), module(p, v)) else {
            continue;
        };
        let values = m.named_tensors()?.iter().map(|(_, t)| t.values.len()).sum();
        out.push(NetworkSummary {
            key: key.to_string(),
            class_name: m.class_name.clone(),
            values,
            init_kwargs: m.init_kwargs(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persistent_network_reads_as_torch_sees_it() {
        // scripts/pickle_fixtures.py: a Net of two persistent Layers and a plain nn.Linear,
        // pickled in stylegan2-ada-pytorch's persistent format, beside its state_dict().
        let data = crate::testing::fixture("pickle", "persistent-p4.pkl");
        let want: serde_json::Value =
            serde_json::from_slice(&crate::testing::fixture("pickle", "persistent.json")).unwrap();
        let p = Pickle::parse(&data).unwrap();
        let g = module(&p, p.get(p.root, "G_ema").unwrap()).expect("a module");
        assert_eq!(g.class_name, want["class_name"]);
        // _init_kwargs, the EasyDict included, as plain data.
        assert_eq!(g.init_kwargs().unwrap(), want["init_kwargs"]);
        let names: Vec<String> = g.children().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["fc0", "fc1", "head"]);
        let tensors = g.named_tensors().unwrap();
        // torch's state_dict order.
        let order: Vec<String> = serde_json::from_value(want["order"].clone()).unwrap();
        let names: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, order);
        let want = &want["tensors"];
        for (name, t) in &tensors {
            let shape: Vec<usize> = serde_json::from_value(want[name]["shape"].clone()).unwrap();
            let values: Vec<f64> = serde_json::from_value(want[name]["values"].clone()).unwrap();
            assert_eq!(t.shape, shape, "{name}");
            for (a, b) in t.values.iter().zip(&values) {
                assert!((*a as f64 - b).abs() < 1e-6, "{name}: {a} vs {b}");
            }
        }
        // Plain data beside the networks is no module.
        assert!(module(&p, p.get(p.root, "training_set_kwargs").unwrap()).is_none());
        let summary = summarize(&p).unwrap();
        assert_eq!(summary.len(), 1);
        assert_eq!((summary[0].key.as_str(), summary[0].values), ("G_ema", 32));
    }
}
