//! Tensors inside plain pickles, as `pickle.dump` writes torch tensors and modules (NVlabs'
//! network pickles are such files): a tensor is `torch._utils._rebuild_tensor_v2(storage,
//! offset, size, stride, ...)` (a parameter wraps one in `_rebuild_parameter`), and its storage
//! is `torch.storage._load_from_bytes(b)`, where `b` is a whole legacy `torch.save` container of
//! that one storage. These calls are interpreted here, on the tree [`super::pickle`] built,
//! without running anything. burn-store's PyTorch reader leaves `_load_from_bytes` opaque.

use super::pickle::{Id, Node, Pickle, PickleError};

type Result<T> = std::result::Result<T, PickleError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(PickleError(msg.into()))
}

/// Element types of torch storages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    F16,
    Bf16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    /// From a legacy storage class name (`FloatStorage`, ...).
    fn of_storage(name: &str) -> Option<Dtype> {
        Some(match name {
            "FloatStorage" => Dtype::F32,
            "DoubleStorage" => Dtype::F64,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    /// From a numpy type string without its byte order (`f4`, `<f4`'s `f4`, ...).
    fn of_numpy(code: &str) -> Option<Dtype> {
        Some(match code {
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            "f2" => Dtype::F16,
            "i8" => Dtype::I64,
            "i4" => Dtype::I32,
            "i2" => Dtype::I16,
            "i1" => Dtype::I8,
            "u1" => Dtype::U8,
            "b1" => Dtype::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::Bf16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// Element `i` of little-endian `bytes` as f32 (integers converted, as the networks' f32
    /// weights want them).
    fn get(self, bytes: &[u8], i: usize) -> f32 {
        let b = &bytes[i * self.size()..(i + 1) * self.size()];
        let arr = |n: usize| -> [u8; 8] {
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(&b[..n]);
            a
        };
        match self {
            Dtype::F32 => f32::from_le_bytes(b.try_into().expect("4 bytes")),
            Dtype::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            Dtype::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            Dtype::Bf16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
            Dtype::I64 => i64::from_le_bytes(arr(8)) as f32,
            Dtype::I32 => i32::from_le_bytes(b.try_into().expect("4 bytes")) as f32,
            Dtype::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
            Dtype::I8 => b[0] as i8 as f32,
            Dtype::U8 | Dtype::Bool => b[0] as f32,
        }
    }
}

/// IEEE half to single precision (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise the fraction.
            let shift = frac.leading_zeros() - 21;
            let frac = (frac << shift) & 0x3ff;
            sign | ((127 - 15 - shift + 1) << 23) | (frac << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// One storage: its element type and little-endian bytes.
#[derive(Debug)]
pub struct Storage {
    pub dtype: Dtype,
    pub bytes: Vec<u8>,
}

/// A tensor read out of a pickle, values as f32 in row-major order.
#[derive(Debug)]
pub struct Tensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The legacy `torch.save` magic number, `0x1950a86a20f9469cfc6c`, as pickle's LONG1 bytes.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// What `torch.storage._load_from_bytes(b)` loads: a legacy `torch.save` container (magic
/// number, protocol version 1001, system info, the pickled storage reference, its key list,
/// then each storage as an 8-byte element count and its bytes) of one storage.
pub fn load_from_bytes(b: &[u8]) -> Result<Storage> {
    let mut pos = 0;
    let mut next = |what: &str| -> Result<Pickle> {
        let (p, used) = Pickle::parse_prefix(&b[pos..])
            .map_err(|e| PickleError(format!("legacy torch.save container, {what}: {e}")))?;
        pos += used;
        Ok(p)
    };
    let magic = next("magic number")?;
    if magic.node(magic.root) != &Node::BigInt(MAGIC.to_vec()) {
        return err("not a legacy torch.save container (wrong magic number)");
    }
    let version = next("protocol version")?;
    if version.node(version.root) != &Node::Int(1001) {
        return err("legacy torch.save container of an unknown protocol version");
    }
    next("system info")?;
    let main = next("storage reference")?;
    let Node::Persistent(pid) = main.node(main.root) else {
        return err("the container holds no storage reference");
    };
    // ("storage", torch.<Type>Storage, key, location, numel[, view metadata])
    let fields = main.elements(*pid).unwrap_or(&[]);
    let [kind, class, _key, _location, numel, ..] = fields else {
        return err("a storage reference is not ('storage', type, key, location, size)");
    };
    let dtype = match (main.str(*kind), main.global(*class)) {
        (Some("storage"), Some(("torch", name))) => Dtype::of_storage(name)
            .ok_or_else(|| PickleError(format!("unsupported storage type torch.{name}")))?,
        _ => return err("a storage reference is not ('storage', torch.<Type>Storage, ...)"),
    };
    let &Node::Int(numel) = main.node(*numel) else {
        return err("a storage size is not an integer");
    };
    next("storage keys")?;
    let count = b
        .get(pos..pos + 8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .ok_or_else(|| PickleError("legacy container: no storage data".into()))?;
    if count != numel as u64 {
        return err(format!(
            "storage data has {count} elements, its reference says {numel}"
        ));
    }
    let data = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(dtype.size()))
        .and_then(|n| Some(pos + 8..(pos + 8).checked_add(n)?))
        .and_then(|range| b.get(range))
        .ok_or_else(|| {
            PickleError(format!(
                "storage data truncated: {count} elements declared, {} bytes left",
                b.len().saturating_sub(pos + 8)
            ))
        })?;
    Ok(Storage {
        dtype,
        bytes: data.to_vec(),
    })
}

fn call_args<'p>(p: &'p Pickle, id: Id, module: &str, name: &str) -> Option<&'p [Id]> {
    match p.node(id) {
        Node::Object { callable, args, .. } if p.global(*callable)? == (module, name) => {
            p.elements(*args)
        }
        _ => None,
    }
}

fn ints(p: &Pickle, id: Id) -> Result<Vec<i64>> {
    p.elements(id)
        .ok_or_else(|| PickleError("a tensor size or stride is not a tuple".into()))?
        .iter()
        .map(|&i| match p.node(i) {
            Node::Int(v) => Ok(*v),
            _ => err("a tensor size or stride holds a non-integer"),
        })
        .collect()
}

/// The tensor (or parameter) at `id`, gathered into row-major order; `None` when the node is
/// not a tensor.
pub fn tensor(p: &Pickle, id: Id) -> Result<Option<Tensor>> {
    if let Some(args) = call_args(p, id, "torch._utils", "_rebuild_parameter") {
        let Some(&t) = args.first() else {
            return err("_rebuild_parameter without a tensor");
        };
        return tensor(p, t);
    }
    let Some(args) = call_args(p, id, "torch._utils", "_rebuild_tensor_v2") else {
        return Ok(None);
    };
    let [storage, offset, size, stride, ..] = args else {
        return err("_rebuild_tensor_v2 with fewer than 4 arguments");
    };
    let bytes = call_args(p, *storage, "torch.storage", "_load_from_bytes")
        .and_then(|a| p.bytes(*a.first()?))
        .ok_or_else(|| {
            PickleError("a tensor's storage is not torch.storage._load_from_bytes(bytes)".into())
        })?;
    let storage = load_from_bytes(&bytes)?;
    let &Node::Int(offset) = p.node(*offset) else {
        return err("a storage offset is not an integer");
    };
    let (shape, stride) = (ints(p, *size)?, ints(p, *stride)?);
    if shape.len() != stride.len() || shape.iter().chain(&stride).any(|&v| v < 0) || offset < 0 {
        return err("a tensor's size, stride and offset do not describe a view");
    }
    let shape: Vec<usize> = shape.iter().map(|&v| v as usize).collect();
    let elements = storage.bytes.len() / storage.dtype.size();
    // A view never has more elements than the storage it reads holds (nothing NVlabs or torch
    // pickles expands a storage), which bounds what a corrupt size can make us allocate.
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= elements)
        .ok_or_else(|| {
            PickleError(format!(
                "a tensor of size {shape:?} cannot be read from a storage of {elements} elements"
            ))
        })?;
    let mut values = Vec::with_capacity(n);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..n {
        let at = index
            .iter()
            .zip(&stride)
            .try_fold(offset as usize, |acc, (&i, &s)| {
                acc.checked_add(i.checked_mul(s as usize)?)
            })
            .unwrap_or(usize::MAX);
        if at >= elements {
            return err(format!(
                "a tensor view reads element {at} of a storage of {elements}"
            ));
        }
        values.push(storage.dtype.get(&storage.bytes, at));
        // Row-major increment.
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Some(Tensor {
        dtype: storage.dtype,
        shape,
        values,
    }))
}

/// A numpy array as numpy pickles it (what TensorFlow-era network pickles hold):
/// `numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b"b")` (`numpy._core` since numpy 2)
/// with the `BUILD` state `(version, shape, dtype, is_fortran, raw bytes)`, the dtype being
/// `numpy.dtype(code, False, True)` with the state `(3, byte order, ...)`. `None` when the node is
/// A pickled `numpy.dtype(code, ...)` with its state, as a [`Dtype`] and the code.
fn numpy_dtype(p: &Pickle, id: Id) -> Result<(Dtype, &str)> {
    let Node::Object {
        callable: dt,
        args,
        state: dt_state,
        ..
    } = p.node(id)
    else {
        return err("a numpy array's dtype is not numpy.dtype(...)");
    };
    let code = match (p.global(*dt), p.elements(*args).and_then(|a| a.first())) {
        (Some(("numpy", "dtype")), Some(&c)) => p.str(c).unwrap_or(""),
        _ => return err("a numpy array's dtype is not numpy.dtype(...)"),
    };
    let order = dt_state
        .and_then(|s| p.elements(s))
        .and_then(|e| e.get(1))
        .and_then(|&o| p.str(o))
        .unwrap_or("<");
    let dtype = Dtype::of_numpy(code)
        .filter(|_| order != ">")
        .ok_or_else(|| PickleError(format!("unsupported numpy dtype {order}{code}")))?;
    Ok((dtype, code))
}

/// not such an array.
pub fn ndarray(p: &Pickle, id: Id) -> Result<Option<Tensor>> {
    let Node::Object {
        callable,
        args,
        state,
        ..
    } = p.node(id)
    else {
        return Ok(None);
    };
    match p.global(*callable) {
        Some(("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct")) => {}
        // A numpy scalar (`np.float32(0)`, what TF returns for a 0-d variable):
        // `scalar(dtype, bytes)`.
        Some(("numpy.core.multiarray" | "numpy._core.multiarray", "scalar")) => {
            let [dtype, data] = p.elements(*args).unwrap_or(&[]) else {
                return err("a numpy scalar without its (dtype, data) arguments");
            };
            let (dtype, code) = numpy_dtype(p, *dtype)?;
            let bytes = p
                .bytes(*data)
                .filter(|b| b.len() == dtype.size())
                .ok_or_else(|| PickleError(format!("a numpy {code} scalar without its bytes")))?;
            return Ok(Some(Tensor {
                dtype,
                shape: Vec::new(),
                values: vec![dtype.get(&bytes, 0)],
            }));
        }
        _ => return Ok(None),
    }
    let fields = state.and_then(|s| p.elements(s)).unwrap_or(&[]);
    let [_, shape, dtype, fortran, data] = fields else {
        return err("a numpy array without its (version, shape, dtype, order, data) state");
    };
    let (dtype, code) = numpy_dtype(p, *dtype)?;
    let shape: Vec<usize> = ints(p, *shape)?
        .into_iter()
        .map(|v| usize::try_from(v).map_err(|_| PickleError("a negative numpy dimension".into())))
        .collect::<Result<_>>()?;
    let bytes = p
        .bytes(*data)
        .ok_or_else(|| PickleError("a numpy array's data is not raw bytes".into()))?;
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n.checked_mul(dtype.size()) == Some(bytes.len()))
        .ok_or_else(|| {
            PickleError(format!(
                "a numpy array of shape {shape:?} ({code}) with {} bytes of data",
                bytes.len()
            ))
        })?;
    let values = (0..n).map(|i| dtype.get(&bytes, i)).collect();
    if p.node(*fortran) != &Node::Bool(true) {
        return Ok(Some(Tensor {
            dtype,
            shape,
            values,
        }));
    }
    // Column-major data: the row-major array of the reversed shape, transposed back.
    let reversed: Vec<usize> = shape.iter().rev().copied().collect();
    let back: Vec<usize> = (0..shape.len()).rev().collect();
    let t = Tensor {
        dtype,
        shape: reversed,
        values,
    };
    Ok(Some(t.permuted(&back)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        crate::testing::fixture("pickle", name)
    }

    /// A view of 10^10 elements over a 12-element storage, and a storage declaring 100 GB in
    /// front of 48 bytes (scripts/pickle_fixtures.py): both refused before any allocation of
    /// that size.
    #[test]
    fn sizes_beyond_the_bytes_are_refused() {
        let p = Pickle::parse(&fixture("huge-p4.pkl")).unwrap();
        let get = |k| tensor(&p, p.get(p.root, k).unwrap()).unwrap_err().0;
        let view = get("view");
        assert!(
            view.contains("[100000, 100000] cannot be read from a storage of 12"),
            "{view}"
        );
        let storage = get("storage");
        assert!(
            storage.contains("25000000000 elements declared, 48 bytes left"),
            "{storage}"
        );
    }

    #[test]
    fn tensors_of_every_layout_and_type_read_as_torch_sees_them() {
        // scripts/pickle_fixtures.py: contiguous, transposed and offset views of one storage,
        // a parameter, half, bfloat16, double, int64 and a 0-d tensor, at protocols 2 and 4.
        let want: serde_json::Value = serde_json::from_slice(&fixture("tensors.json")).unwrap();
        for proto in [2, 4] {
            let p = Pickle::parse(&fixture(&format!("tensors-p{proto}.pkl"))).unwrap();
            let items = p.items(p.root).unwrap();
            assert_eq!(items.len(), want.as_object().unwrap().len());
            for &(k, v) in items {
                let name = p.str(k).unwrap();
                let t = tensor(&p, v).unwrap().expect("a tensor");
                let w = &want[name];
                let shape: Vec<usize> = serde_json::from_value(w["shape"].clone()).unwrap();
                assert_eq!(t.shape, shape, "{name}");
                let values: Vec<f64> = serde_json::from_value(w["values"].clone()).unwrap();
                assert_eq!(t.values.len(), values.len(), "{name}");
                for (a, b) in t.values.iter().zip(&values) {
                    assert!(
                        (*a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "{name}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn half_precision_converts_exactly() {
        for (h, f) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8),
            (0x0000, 0.0),
        ] {
            assert_eq!(f16_to_f32(h), f, "{h:04x}");
        }
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn a_damaged_storage_is_an_error() {
        let p = Pickle::parse(&fixture("tensors-p4.pkl")).unwrap();
        let f32_node = p.get(p.root, "f32").unwrap();
        let Node::Object { args, .. } = p.node(f32_node) else {
            panic!("a rebuild call")
        };
        let storage = p.elements(*args).unwrap()[0];
        let Node::Object { args, .. } = p.node(storage) else {
            panic!("_load_from_bytes")
        };
        let bytes = p.bytes(p.elements(*args).unwrap()[0]).unwrap();
        assert!(load_from_bytes(&bytes).is_ok());
        let cut = load_from_bytes(&bytes[..bytes.len() - 4]).unwrap_err();
        assert!(cut.0.contains("truncated"), "{cut}");
        let mut bad = bytes.clone();
        bad[4] ^= 0xff; // inside the magic number
        assert!(load_from_bytes(&bad).is_err());
    }
}
