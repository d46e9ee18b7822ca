//! Networks in NVlabs' original TensorFlow pickles: StyleGAN2's and StyleGAN's
//! `dnnlib.tflib.network.Network` (state version 4 and 3) and Progressive GAN's
//! `tfutil.Network`. A network pickles as the class plus a `BUILD` state
//! `dict(version, name, static_kwargs, components, build_module_src, build_func_name, variables)`,
//! `variables` a list of `(name, numpy array)`. Nothing of the build code is read: a network is
//! its name, its constructor arguments and its variables, components flattened as
//! `component/variable` (as stylegan2-ada-pytorch's `legacy.py` collects them).

use std::collections::BTreeMap;

use burn::store::bridge;
use burn::tensor::TensorData;
use burn_pack::Tensor as PackTensor;

use super::pickle::{Id, Node, Pickle, PickleError};
use super::torch_pickle::{Tensor, ndarray};

type Result<T> = std::result::Result<T, PickleError>;

/// A TensorFlow-era network of a pickle.
pub struct TfNetwork {
    pub name: String,
    pub version: i64,
    /// The build function's keyword arguments, as JSON.
    pub static_kwargs: serde_json::Value,
    /// Every variable of the network and its components, by `component/name`.
    pub variables: BTreeMap<String, Tensor>,
}

/// The network at `id`; `None` when the node is not a pickled TF network.
pub fn network(p: &Pickle, id: Id) -> Result<Option<TfNetwork>> {
    let Node::Object {
        callable, state, ..
    } = p.node(id)
    else {
        return Ok(None);
    };
    match p.global(*callable) {
        Some(("dnnlib.tflib.network" | "tfutil" | "network", "Network")) => {}
        _ => return Ok(None),
    }
    let state = state.ok_or_else(|| PickleError("a TF network without its state".into()))?;
    if p.get(state, "build_func_spec").is_some() {
        return Err(PickleError(
            "a Theano-era Progressive GAN network (the first release's format); re-save it with \
             the TensorFlow release's legacy.py first"
                .into(),
        ));
    }
    let mut variables = BTreeMap::new();
    let (name, version, static_kwargs) = collect(p, state, "", &mut variables)?;
    Ok(Some(TfNetwork {
        name,
        version,
        static_kwargs,
        variables,
    }))
}

fn collect(
    p: &Pickle,
    state: Id,
    prefix: &str,
    out: &mut BTreeMap<String, Tensor>,
) -> Result<(String, i64, serde_json::Value)> {
    let field = |k: &str| {
        p.get(state, k)
            .ok_or_else(|| PickleError(format!("a TF network state without {k:?}")))
    };
    let name = p.str(field("name")?).unwrap_or("").to_string();
    let version = match p.node(field("version")?) {
        Node::Int(v) => *v,
        _ => {
            return Err(PickleError(
                "a TF network version that is not an integer".into(),
            ));
        }
    };
    let kwargs = p
        .get(state, "static_kwargs")
        .and_then(|k| p.natural_json(k))
        .unwrap_or_else(|| serde_json::json!({}));
    for &v in p.elements(field("variables")?).unwrap_or(&[]) {
        let [k, a] = p.elements(v).unwrap_or(&[]) else {
            return Err(PickleError(format!(
                "{prefix}: a variable that is not (name, array)"
            )));
        };
        let key = format!("{prefix}{}", p.str(*k).unwrap_or(""));
        let t = ndarray(p, *a)?
            .ok_or_else(|| PickleError(format!("variable {key} is not a numpy array")))?;
        out.insert(key, t);
    }
    if let Some(items) = p.get(state, "components").and_then(|c| p.items(c)) {
        for &(k, v) in items {
            let sub = format!("{prefix}{}/", p.str(k).unwrap_or(""));
            let Node::Object { state: Some(s), .. } = p.node(v) else {
                return Err(PickleError(format!("component {sub} is not a TF network")));
            };
            collect(p, *s, &sub, out)?;
        }
    }
    Ok((name, version, kwargs))
}

/// The TF networks of a pickle whose root is a tuple of them (`(G, D, Gs)`); empty otherwise.
pub fn networks(p: &Pickle) -> Result<Vec<TfNetwork>> {
    let Some(items) = p.elements(p.root) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for &id in items {
        match network(p, id)? {
            Some(n) => out.push(n),
            None => return Ok(Vec::new()),
        }
    }
    Ok(out)
}

/// The keys of the JSON object `v` outside `allowed` whose values are not null.
pub fn unknown_keys<'a>(v: &'a serde_json::Value, allowed: &[&str]) -> Vec<&'a String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, x)| !allowed.contains(&k.as_str()) && !x.is_null())
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default()
}

/// A TF network's keyword arguments checked against `known` (read) and `ignored`, as
/// `legacy.py` checks them: any other key is an error.
pub fn tf_kwargs(
    net: &TfNetwork,
    known: &[&str],
    ignored: &[&str],
) -> std::result::Result<(), String> {
    let allowed: Vec<&str> = known.iter().chain(ignored).copied().collect();
    let unknown = unknown_keys(&net.static_kwargs, &allowed);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "its TF network {} has arguments genforge does not convert: {unknown:?}",
            net.name
        ))
    }
}

/// An error when `net` sets argument `key` to anything but `want` (the one value genforge
/// builds); numbers compare by value (`1` equals `1.0`).
pub fn require(
    net: &TfNetwork,
    key: &str,
    want: &serde_json::Value,
) -> std::result::Result<(), String> {
    let Some(v) = net.static_kwargs.get(key).filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let same = match (v.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => v == want,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "its TF network {} has {key} = {v}, which genforge does not build (only {want})",
            net.name
        ))
    }
}

/// `net`'s argument `key` as a count, `default` when absent.
pub fn usize_arg(net: &TfNetwork, key: &str, default: usize) -> std::result::Result<usize, String> {
    match net.static_kwargs.get(key).filter(|v| !v.is_null()) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("its TF network {} has {key} = {v}, not a count", net.name)),
    }
}

/// `lod` must be 0: a network saved mid-growth draws at a lower resolution.
pub fn check_lod(name: &str, t: &Tensor) -> std::result::Result<(), String> {
    match t.values.as_slice() {
        [v] if *v == 0.0 => Ok(()),
        v => Err(format!(
            "{name} = {v:?}: a network saved while growing (lod > 0); genforge imports finished \
             networks (lod = 0)"
        )),
    }
}

/// D's `num_channels`, `resolution`, `fmap_base` and `fmap_max` against G's (`D_basic` and
/// `D_paper` default to 1 channel at 32x32, which training always overrides), and its minibatch
/// stddev layer, which genforge's D always has.
pub fn check_discriminator(
    d: &TfNetwork,
    g_sizes: [usize; 4],
    mbstd_group: usize,
) -> std::result::Result<(), String> {
    let keys = [
        ("num_channels", 1),
        ("resolution", 32),
        ("fmap_base", 8192),
        ("fmap_max", 512),
    ];
    for ((key, default), g) in keys.into_iter().zip(g_sizes) {
        if usize_arg(d, key, default)? != g {
            return Err(format!("its D has another {key} than its G"));
        }
    }
    if mbstd_group < 2 {
        return Err(
            "its D has no minibatch stddev layer (mbstd_group_size < 2), which genforge does not \
             build"
                .into(),
        );
    }
    Ok(())
}

/// Converted tensors by key (the target network's), in burn-pack form.
pub type Converted = BTreeMap<String, PackTensor>;

pub fn put(out: &mut Converted, key: String, t: Tensor) {
    let shape = t.shape.clone();
    let data = TensorData::new(t.values, shape);
    out.insert(key.clone(), bridge::from_data(data, key, None));
}

/// `net`'s variables converted one by one by `each(name, name's parts, tensor, out)`; an error
/// names the variable as `label/name`.
pub fn convert(
    label: &str,
    net: &TfNetwork,
    mut each: impl FnMut(&str, &[&str], &Tensor, &mut Converted) -> std::result::Result<(), String>,
) -> std::result::Result<Converted, String> {
    let mut out = Converted::new();
    for (name, t) in &net.variables {
        let parts: Vec<&str> = name.split('/').collect();
        each(name, &parts, t, &mut out).map_err(|e| format!("TF variable {label}/{name}: {e}"))?;
    }
    Ok(out)
}

/// The error of a variable the network being built does not have.
pub fn not_in_network(t: &Tensor) -> String {
    format!("not in this network (shape {:?})", t.shape)
}

/// A layer's variable in torch's layout: a conv kernel or dense weight transposed, a bias as is.
pub fn torch_layout(leaf: &str, t: &Tensor) -> std::result::Result<Tensor, String> {
    match (leaf, t.shape.len()) {
        ("weight", 4) => kernel(t),
        ("weight", _) => matrix(t),
        _ => Ok(t.plus(0.0)),
    }
}

/// TF's `[kh, kw, in, out]` kernel as torch's `[out, in, kh, kw]`.
pub fn kernel(t: &Tensor) -> std::result::Result<Tensor, String> {
    if t.shape.len() == 4 {
        Ok(t.permuted(&[3, 2, 0, 1]))
    } else {
        Err(format!("a conv kernel of shape {:?}", t.shape))
    }
}

/// TF's `[in, out]` dense weight as torch's `[out, in]`.
pub fn matrix(t: &Tensor) -> std::result::Result<Tensor, String> {
    if t.shape.len() == 2 {
        Ok(t.permuted(&[1, 0]))
    } else {
        Err(format!("a dense weight of shape {:?}", t.shape))
    }
}

/// `res` of a TF scope name `RESxRES`.
pub fn side(scope: &str) -> Option<usize> {
    scope.split_once('x').and_then(|(a, _)| a.parse().ok())
}

impl Tensor {
    /// Dimensions reordered: output dimension `i` is input dimension `perm[i]` (numpy's
    /// `transpose(perm)`).
    pub fn permuted(&self, perm: &[usize]) -> Tensor {
        let shape: Vec<usize> = perm.iter().map(|&d| self.shape[d]).collect();
        let strides = row_major_strides(&self.shape);
        let n = self.values.len();
        let mut values = Vec::with_capacity(n);
        let mut index = vec![0usize; shape.len()];
        for _ in 0..n {
            let at: usize = index.iter().zip(perm).map(|(&i, &d)| i * strides[d]).sum();
            values.push(self.values[at]);
            for d in (0..shape.len()).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Tensor {
            dtype: self.dtype,
            shape,
            values,
        }
    }

    /// The first two dimensions reversed (numpy's `[::-1, ::-1]`).
    pub fn flipped01(&self) -> Tensor {
        let (a, b) = (self.shape[0], self.shape[1]);
        let inner: usize = self.shape[2..].iter().product();
        let mut values = Vec::with_capacity(self.values.len());
        for i in (0..a).rev() {
            for j in (0..b).rev() {
                let at = (i * b + j) * inner;
                values.extend_from_slice(&self.values[at..at + inner]);
            }
        }
        Tensor {
            dtype: self.dtype,
            shape: self.shape.clone(),
            values,
        }
    }

    /// Leading dimensions of size 1 dropped, `n` of them (numpy's `[0]`, `[0, 0]`).
    pub fn squeezed(&self, n: usize) -> Option<Tensor> {
        (self.shape.len() >= n && self.shape[..n].iter().all(|&d| d == 1)).then(|| Tensor {
            dtype: self.dtype,
            shape: self.shape[n..].to_vec(),
            values: self.values.clone(),
        })
    }

    pub fn scaled(&self, v: f32) -> Tensor {
        Tensor {
            dtype: self.dtype,
            shape: self.shape.clone(),
            values: self.values.iter().map(|x| x * v).collect(),
        }
    }

    pub fn plus(&self, v: f32) -> Tensor {
        Tensor {
            dtype: self.dtype,
            shape: self.shape.clone(),
            values: self.values.iter().map(|x| x + v).collect(),
        }
    }
}

fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::super::torch_pickle::Dtype;
    use super::*;

    #[test]
    fn permute_flip_and_squeeze_follow_numpy() {
        let t = Tensor {
            dtype: Dtype::F32,
            shape: vec![2, 3, 4],
            values: (0..24).map(|v| v as f32).collect(),
        };
        // numpy: np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1)[1, 1, 2] == 21
        let p = t.permuted(&[2, 0, 1]);
        assert_eq!(p.shape, [4, 2, 3]);
        assert_eq!(p.values[6 + 3 + 2], 21.0);
        // [::-1, ::-1][0, 0] is the last row of the last block.
        let f = t.flipped01();
        assert_eq!(&f.values[..4], &[20.0, 21.0, 22.0, 23.0]);
        assert!(t.squeezed(1).is_none());
    }
}
