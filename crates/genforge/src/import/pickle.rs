//! A Python pickle reader that executes nothing. Python's `pickle.load` runs whatever callables
//! a file names, which makes an untrusted pickle a program; this reader only builds a tree of
//! what the opcodes describe: plain values, containers, and opaque `Global` names, calls
//! (`REDUCE`, `NEWOBJ`) and `BUILD` states that it never performs. The importers then interpret
//! the few calls they know (an allowlist: `collections.OrderedDict`, torch's tensor and storage
//! rebuilders, ...) and treat everything else as data.
//!
//! Nodes live in an arena so that the memo (`PUT`/`GET`) shares them as Python does: a list
//! appended to after it was memoized is the same list wherever it is referenced, and large byte
//! strings are never copied. Protocols 0 to 5 are read; `EXT*` (the copyreg extension registry)
//! and out-of-band buffers are refused with an error.

use std::collections::HashMap;

/// Index of a node in [`Pickle::nodes`].
pub type Id = usize;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer beyond 64 bits, as pickle's little-endian two's complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    /// `module.name`, never imported.
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)` (`REDUCE`) or `cls.__new__(cls, *args)` (`NEWOBJ`), never called; the
    /// `BUILD` state and the items a pickle adds to the result (`SETITEMS`, `APPENDS`) are kept.
    Object {
        callable: Id,
        args: Id,
        new: bool,
        state: Option<Id>,
        items: Vec<(Id, Id)>,
        elements: Vec<Id>,
    },
    /// A persistent id (`PERSID`, `BINPERSID`): torch's reference to a storage record.
    Persistent(Id),
}

/// A parsed pickle: its nodes and the root.
#[derive(Debug)]
pub struct Pickle {
    pub nodes: Vec<Node>,
    pub root: Id,
}

/// Why a pickle could not be read.
#[derive(Debug, PartialEq)]
pub struct PickleError(pub String);

impl std::fmt::Display for PickleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, PickleError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(PickleError(msg.into()))
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.data.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) if self.pos.checked_add(n).is_some() => {
                self.pos += n;
                Ok(s)
            }
            _ => err(format!(
                "truncated: {n} bytes wanted at offset {}, {} left",
                self.pos,
                self.data.len().saturating_sub(self.pos)
            )),
        }
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn len(&mut self, bytes: usize) -> Result<usize> {
        let v = match bytes {
            1 => self.u8()? as u64,
            4 => u32::from_le_bytes(self.le()?) as u64,
            _ => u64::from_le_bytes(self.le()?),
        };
        usize::try_from(v).or_else(|_| err("length does not fit in memory"))
    }
    /// A protocol-0 argument, up to its newline.
    fn line_bytes(&mut self) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| PickleError(format!("unterminated line at offset {}", self.pos)))?;
        self.pos += end + 1;
        Ok(&rest[..end])
    }
    fn line(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.line_bytes()?).or_else(|_| err("a text argument is not UTF-8"))
    }
}

fn utf8(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).or_else(|_| err("a string is not UTF-8"))
}

/// Pickle's LONG1/LONG4 payload: little-endian two's complement.
fn long(bytes: &[u8]) -> Node {
    if bytes.is_empty() {
        return Node::Int(0);
    }
    if bytes.len() <= 8 {
        let fill = if bytes[bytes.len() - 1] & 0x80 != 0 {
            0xff
        } else {
            0
        };
        let mut b = [fill; 8];
        b[..bytes.len()].copy_from_slice(bytes);
        return Node::Int(i64::from_le_bytes(b));
    }
    Node::BigInt(bytes.to_vec())
}

/// A decimal integer as pickle's LONG1 payload (little-endian two's complement, the length
/// Python's `encode_long` gives it).
fn decimal_to_le(s: &str) -> Result<Vec<u8>> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return err(format!("LONG argument {s:?}"));
    }
    // Magnitude in base 256, little-endian.
    let mut mag: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = (d - b'0') as u32;
        for byte in mag.iter_mut() {
            let v = *byte as u32 * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push(carry as u8);
            carry >>= 8;
        }
    }
    while mag.len() > 1 && mag[mag.len() - 1] == 0 {
        mag.pop();
    }
    let bits = (mag.len() - 1) * 8 + (8 - mag[mag.len() - 1].leading_zeros() as usize);
    let n = (bits >> 3) + 1;
    mag.resize(n, 0);
    if neg {
        // Two's complement: invert and add one.
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let v = (!*b) as u16 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        if n > 1 && mag[n - 1] == 0xff && mag[n - 2] & 0x80 != 0 {
            mag.pop();
        }
    }
    Ok(mag)
}

/// Unescape a protocol-0 `STRING` argument (a Python repr in quotes).
fn unquote(s: &str) -> Result<Vec<u8>> {
    let inner = s
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
        .ok_or_else(|| PickleError(format!("STRING argument not quoted: {s}")))?;
    let mut out = Vec::new();
    let mut chars = inner.bytes();
    while let Some(c) = chars.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let h: Vec<u8> = chars.by_ref().take(2).collect();
                let v = std::str::from_utf8(&h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| PickleError("bad \\x escape".into()))?;
                out.push(v);
            }
            Some(c) => out.push(c),
            None => return err("dangling backslash"),
        }
    }
    Ok(out)
}

/// Protocol 0's `raw-unicode-escape` (`\uXXXX`, `\UXXXXXXXX`, other bytes as Latin-1).
fn raw_unicode(s: &[u8]) -> Result<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let n = match (s[i], s.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            (b, _) => {
                out.push(b as char);
                i += 1;
                continue;
            }
        };
        let hex = s
            .get(i + 2..i + 2 + n)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .ok_or_else(|| PickleError("bad unicode escape".into()))?;
        out.push(hex);
        i += 2 + n;
    }
    Ok(out)
}

impl Pickle {
    /// Parse one pickle from `data` (trailing bytes are ignored, as Python does).
    pub fn parse(data: &[u8]) -> Result<Pickle> {
        Ok(Self::parse_prefix(data)?.0)
    }

    /// Parse the pickle at the start of `data`; also returns how many bytes it took (files
    /// such as torch's legacy container hold several pickles in a row).
    pub fn parse_prefix(data: &[u8]) -> Result<(Pickle, usize)> {
        let mut p = Parser {
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        };
        let mut reader = Reader { data, pos: 0 };
        let root = p.run(&mut reader)?;
        Ok((
            Pickle {
                nodes: p.nodes,
                root,
            },
            reader.pos,
        ))
    }

    pub fn node(&self, id: Id) -> &Node {
        &self.nodes[id]
    }

    /// The `module.name` of a `Global` node.
    pub fn global(&self, id: Id) -> Option<(&str, &str)> {
        match self.node(id) {
            Node::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    pub fn str(&self, id: Id) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The key/value pairs of a dict, or of an object built as one (`OrderedDict()` then
    /// `SETITEMS`), in order.
    pub fn items(&self, id: Id) -> Option<&[(Id, Id)]> {
        match self.node(id) {
            Node::Dict(items) => Some(items),
            Node::Object { items, .. } => Some(items),
            _ => None,
        }
    }

    /// The value under the string key `key` of a dict-like node.
    pub fn get(&self, id: Id, key: &str) -> Option<Id> {
        self.items(id)?
            .iter()
            .find(|(k, _)| self.str(*k) == Some(key))
            .map(|(_, v)| *v)
    }

    /// The bytes of a `bytes` node: BINBYTES (protocols 3-5) or `_codecs.encode(text,
    /// "latin1")` (how Python 3 pickles bytes at protocols 0-2).
    pub fn bytes(&self, id: Id) -> Option<Vec<u8>> {
        match self.node(id) {
            Node::Bytes(b) => Some(b.clone()),
            Node::Object { callable, args, .. } => {
                if self.global(*callable)? != ("_codecs", "encode") {
                    return None;
                }
                let [text, codec] = self.elements(*args)? else {
                    return None;
                };
                if self.str(*codec)? != "latin1" {
                    return None;
                }
                self.str(*text)?
                    .chars()
                    .map(|c| u8::try_from(c as u32).ok())
                    .collect()
            }
            _ => None,
        }
    }

    /// The elements of a tuple or list.
    pub fn elements(&self, id: Id) -> Option<&[Id]> {
        match self.node(id) {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    /// The node as plain data in the JSON of [`to_json`](Self::to_json), with the calls that
    /// only rebuild plain data interpreted: `collections.OrderedDict` (as a dict), `set` and
    /// `frozenset` (as a set), `_codecs.encode(text, "latin1")` (Python 3's pickling of bytes
    /// at protocols 0-2) and `bytearray`; `None` when anything else (a class instance, a call
    /// outside that list) is in it.
    pub fn plain_json(&self, id: Id) -> Option<serde_json::Value> {
        use serde_json::{Value as J, json};
        let all = |ids: &[Id]| -> Option<J> {
            Some(J::Array(
                ids.iter()
                    .map(|&i| self.plain_json(i))
                    .collect::<Option<_>>()?,
            ))
        };
        let pairs = |items: &[(Id, Id)]| -> Option<J> {
            let v: Option<Vec<J>> = items
                .iter()
                .map(|&(k, v)| Some(json!([self.plain_json(k)?, self.plain_json(v)?])))
                .collect();
            Some(J::Array(v?))
        };
        Some(match self.node(id) {
            Node::List(v) => json!({ "list": all(v)? }),
            Node::Tuple(v) => all(v)?,
            Node::Dict(items) => json!({ "dict": pairs(items)? }),
            Node::Set(v) => json!({ "set": all(v)? }),
            Node::Object {
                callable,
                args,
                state: None,
                items,
                elements,
                ..
            } => {
                let (module, name) = self.global(*callable)?;
                let args = self.elements(*args)?;
                match (module, name, args) {
                    ("collections", "OrderedDict", []) if elements.is_empty() => {
                        json!({ "dict": pairs(items)? })
                    }
                    ("builtins" | "__builtin__", "set" | "frozenset", [list])
                        if items.is_empty() && elements.is_empty() =>
                    {
                        json!({ "set": all(self.elements(*list)?)? })
                    }
                    ("_codecs", "encode", _) => json!({ "bytes": hex(&self.bytes(id)?) }),
                    ("builtins" | "__builtin__", "bytearray", [b]) => self.plain_json(*b)?,
                    ("builtins" | "__builtin__", "bytes", []) => json!({ "bytes": "" }),
                    // NVlabs' attribute dict (a dict subclass: NEWOBJ, then SETITEMS).
                    ("dnnlib.util" | "dnnlib", "EasyDict", []) if elements.is_empty() => {
                        json!({ "dict": pairs(items)? })
                    }
                    _ => return None,
                }
            }
            Node::Global { .. } | Node::Object { .. } | Node::Persistent(_) => return None,
            _ => self.to_json(id),
        })
    }

    /// [`plain_json`](Self::plain_json) as ordinary JSON: dicts with string keys as objects,
    /// lists, tuples and sets as arrays (what a config wants; the tuple/list distinction and
    /// non-string keys are dropped).
    pub fn natural_json(&self, id: Id) -> Option<serde_json::Value> {
        fn natural(v: serde_json::Value) -> serde_json::Value {
            use serde_json::Value as J;
            match v {
                J::Object(mut o) if o.len() == 1 => {
                    let (k, inner) = o.iter_mut().next().expect("one entry");
                    let inner = inner.take();
                    match (k.as_str(), inner) {
                        ("list" | "set", J::Array(a)) => {
                            J::Array(a.into_iter().map(natural).collect())
                        }
                        ("dict", J::Array(pairs)) => {
                            let mut out = serde_json::Map::new();
                            for pair in pairs {
                                if let J::Array(mut kv) = pair
                                    && kv.len() == 2
                                    && let J::String(key) = kv[0].take()
                                {
                                    out.insert(key, natural(kv[1].take()));
                                }
                            }
                            J::Object(out)
                        }
                        (k, inner) => {
                            let mut o = serde_json::Map::new();
                            o.insert(k.to_string(), inner);
                            J::Object(o)
                        }
                    }
                }
                J::Array(a) => J::Array(a.into_iter().map(natural).collect()),
                other => other,
            }
        }
        self.plain_json(id).map(natural)
    }

    /// A JSON picture of the tree (tests and debugging): containers as arrays and objects,
    /// globals as `{"global": "m.n"}`, calls as `{"call"|"new": callable, "args", "state",
    /// "items", "elements"}`, bytes as `{"bytes": hex}`.
    pub fn to_json(&self, id: Id) -> serde_json::Value {
        use serde_json::{Value as J, json};
        let all = |ids: &[Id]| J::Array(ids.iter().map(|&i| self.to_json(i)).collect());
        let pairs = |items: &[(Id, Id)]| {
            J::Array(
                items
                    .iter()
                    .map(|&(k, v)| json!([self.to_json(k), self.to_json(v)]))
                    .collect(),
            )
        };
        match self.node(id) {
            Node::None => J::Null,
            Node::Bool(b) => json!(b),
            Node::Int(i) => json!(i),
            Node::BigInt(b) => json!({ "bigint": hex(b) }),
            Node::Float(f) => json!(f),
            Node::Str(s) => json!(s),
            Node::Bytes(b) => json!({ "bytes": hex(b) }),
            Node::List(v) => json!({ "list": all(v) }),
            Node::Tuple(v) => all(v),
            Node::Dict(items) => json!({ "dict": pairs(items) }),
            Node::Set(v) => json!({ "set": all(v) }),
            Node::Global { module, name } => json!({ "global": format!("{module}.{name}") }),
            Node::Object {
                callable,
                args,
                new,
                state,
                items,
                elements,
            } => {
                let mut o = serde_json::Map::new();
                o.insert(
                    if *new { "new" } else { "call" }.into(),
                    self.to_json(*callable),
                );
                o.insert("args".into(), self.to_json(*args));
                if let Some(s) = state {
                    o.insert("state".into(), self.to_json(*s));
                }
                if !items.is_empty() {
                    o.insert("items".into(), pairs(items));
                }
                if !elements.is_empty() {
                    o.insert("elements".into(), all(elements));
                }
                J::Object(o)
            }
            Node::Persistent(p) => json!({ "persistent": self.to_json(*p) }),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Parser {
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
}

impl Parser {
    fn push(&mut self, n: Node) {
        self.nodes.push(n);
        self.stack.push(self.nodes.len() - 1);
    }
    fn pop(&mut self) -> Result<Id> {
        self.stack
            .pop()
            .ok_or_else(|| PickleError("stack underflow".into()))
    }
    fn top(&self) -> Result<Id> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| PickleError("stack underflow".into()))
    }
    /// The items pushed since the last MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| PickleError("no MARK on the stack".into()))?;
        if m > self.stack.len() {
            return err("MARK beyond the stack");
        }
        Ok(self.stack.split_off(m))
    }
    fn memo_get(&mut self, key: u64) -> Result<()> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| PickleError(format!("memo key {key} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }
    fn add_items(&mut self, target: Id, kv: Vec<Id>) -> Result<()> {
        if !kv.len().is_multiple_of(2) {
            return err("SETITEMS with an odd number of items");
        }
        let pairs: Vec<(Id, Id)> = kv.chunks(2).map(|c| (c[0], c[1])).collect();
        match &mut self.nodes[target] {
            Node::Dict(items) | Node::Object { items, .. } => items.extend(pairs),
            other => return err(format!("SETITEM on {}", kind(other))),
        }
        Ok(())
    }
    fn add_elements(&mut self, target: Id, values: Vec<Id>) -> Result<()> {
        match &mut self.nodes[target] {
            Node::List(v) | Node::Set(v) | Node::Object { elements: v, .. } => v.extend(values),
            other => return err(format!("APPEND on {}", kind(other))),
        }
        Ok(())
    }
    fn object(&mut self, callable: Id, args: Id, new: bool) {
        self.push(Node::Object {
            callable,
            args,
            new,
            state: None,
            items: Vec::new(),
            elements: Vec::new(),
        });
    }

    fn run(&mut self, r: &mut Reader) -> Result<Id> {
        loop {
            let op = r.u8()?;
            match op {
                0x80 => {
                    let v = r.u8()?; // PROTO
                    if v > 5 {
                        return err(format!("pickle protocol {v} is newer than 5"));
                    }
                }
                0x95 => {
                    r.take(8)?; // FRAME: a length hint
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                b'N' => self.push(Node::None),
                0x88 => self.push(Node::Bool(true)),
                0x89 => self.push(Node::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(r.le()?);
                    self.push(Node::Int(v as i64));
                }
                b'K' => {
                    let v = r.u8()?;
                    self.push(Node::Int(v as i64));
                }
                b'M' => {
                    let v = u16::from_le_bytes(r.le()?);
                    self.push(Node::Int(v as i64));
                }
                0x8a => {
                    let n = r.len(1)?;
                    let b = r.take(n)?;
                    self.push(long(b));
                }
                0x8b => {
                    let n = r.len(4)?;
                    let b = r.take(n)?;
                    self.push(long(b));
                }
                b'I' => {
                    let s = r.line()?;
                    let node = match s {
                        "00" => Node::Bool(false),
                        "01" => Node::Bool(true),
                        _ => Node::Int(s.parse().or_else(|_| err(format!("INT argument {s:?}")))?),
                    };
                    self.push(node);
                }
                b'L' => {
                    let s = r.line()?.trim_end_matches('L');
                    let node = match s.parse() {
                        Ok(v) => Node::Int(v),
                        Err(_) => long(&decimal_to_le(s)?),
                    };
                    self.push(node);
                }
                b'G' => {
                    let v = f64::from_be_bytes(r.le()?);
                    self.push(Node::Float(v));
                }
                b'F' => {
                    let s = r.line()?;
                    let v = s
                        .parse()
                        .or_else(|_| err(format!("FLOAT argument {s:?}")))?;
                    self.push(Node::Float(v));
                }
                0x8c | b'X' | 0x8d => {
                    // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
                    let n = r.len(match op {
                        0x8c => 1,
                        b'X' => 4,
                        _ => 8,
                    })?;
                    let s = utf8(r.take(n)?)?;
                    self.push(Node::Str(s));
                }
                b'V' => {
                    let s = raw_unicode(r.line_bytes()?)?;
                    self.push(Node::Str(s));
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    // SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8
                    let n = r.len(match op {
                        b'C' => 1,
                        b'B' => 4,
                        _ => 8,
                    })?;
                    let b = r.take(n)?.to_vec();
                    self.push(Node::Bytes(b));
                }
                b'U' | b'T' => {
                    // SHORT_BINSTRING, BINSTRING: Python 2 str, read as text when it is UTF-8
                    let n = r.len(if op == b'U' { 1 } else { 4 })?;
                    let b = r.take(n)?;
                    self.push(match std::str::from_utf8(b) {
                        Ok(s) => Node::Str(s.to_string()),
                        Err(_) => Node::Bytes(b.to_vec()),
                    });
                }
                b'S' => {
                    let b = unquote(r.line()?)?;
                    self.push(match String::from_utf8(b) {
                        Ok(s) => Node::Str(s),
                        Err(e) => Node::Bytes(e.into_bytes()),
                    });
                }
                b']' => self.push(Node::List(Vec::new())),
                b'l' => {
                    let v = self.pop_mark()?;
                    self.push(Node::List(v));
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    self.add_elements(l, vec![v])?;
                }
                b'e' => {
                    let v = self.pop_mark()?;
                    let l = self.top()?;
                    self.add_elements(l, v)?;
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b'd' => {
                    let kv = self.pop_mark()?;
                    self.push(Node::Dict(Vec::new()));
                    let d = self.top()?;
                    self.add_items(d, kv)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.add_items(d, vec![k, v])?;
                }
                b'u' => {
                    let kv = self.pop_mark()?;
                    let d = self.top()?;
                    self.add_items(d, kv)?;
                }
                0x8f => self.push(Node::Set(Vec::new())),
                0x90 => {
                    let v = self.pop_mark()?;
                    let s = self.top()?;
                    self.add_elements(s, v)?;
                }
                0x91 => {
                    let v = self.pop_mark()?;
                    self.push(Node::Set(v));
                }
                b')' => self.push(Node::Tuple(Vec::new())),
                b't' => {
                    let v = self.pop_mark()?;
                    self.push(Node::Tuple(v));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return err("stack underflow");
                    }
                    let v = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::Tuple(v));
                }
                b'c' => {
                    let module = r.line()?.to_string();
                    let name = r.line()?.to_string();
                    self.push(Node::Global { module, name });
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Node::Str(m), Node::Str(n)) = (&self.nodes[module], &self.nodes[name])
                    else {
                        return err("STACK_GLOBAL needs two strings");
                    };
                    let g = Node::Global {
                        module: m.clone(),
                        name: n.clone(),
                    };
                    self.push(g);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.object(callable, args, false);
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    self.object(cls, args, true);
                }
                0x92 => {
                    // NEWOBJ_EX: keyword arguments are kept as the args' second element
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    self.push(Node::Tuple(vec![args, kwargs]));
                    let both = self.pop()?;
                    self.object(cls, both, true);
                }
                b'i' => {
                    // INST: module, name lines, then the arguments since MARK
                    let module = r.line()?.to_string();
                    let name = r.line()?.to_string();
                    let args = self.pop_mark()?;
                    self.push(Node::Global { module, name });
                    let cls = self.pop()?;
                    self.push(Node::Tuple(args));
                    let args = self.pop()?;
                    self.object(cls, args, true);
                }
                b'o' => {
                    let mut v = self.pop_mark()?;
                    if v.is_empty() {
                        return err("OBJ without a class");
                    }
                    let cls = v.remove(0);
                    self.push(Node::Tuple(v));
                    let args = self.pop()?;
                    self.object(cls, args, true);
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    match &mut self.nodes[obj] {
                        Node::Object { state: s, .. } => *s = Some(state),
                        other => return err(format!("BUILD on {}", kind(other))),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Node::Persistent(pid));
                }
                b'P' => {
                    let s = r.line()?.to_string();
                    self.push(Node::Str(s));
                    let pid = self.pop()?;
                    self.push(Node::Persistent(pid));
                }
                b'p' => {
                    let key = r.line()?.parse().or_else(|_| err("PUT key"))?;
                    let t = self.top()?;
                    self.memo.insert(key, t);
                }
                b'q' => {
                    let key = r.u8()? as u64;
                    let t = self.top()?;
                    self.memo.insert(key, t);
                }
                b'r' => {
                    let key = u32::from_le_bytes(r.le()?) as u64;
                    let t = self.top()?;
                    self.memo.insert(key, t);
                }
                0x94 => {
                    let key = self.memo.len() as u64; // MEMOIZE
                    let t = self.top()?;
                    self.memo.insert(key, t);
                }
                b'g' => {
                    let key = r.line()?.parse().or_else(|_| err("GET key"))?;
                    self.memo_get(key)?;
                }
                b'h' => {
                    let key = r.u8()? as u64;
                    self.memo_get(key)?;
                }
                b'j' => {
                    let key = u32::from_le_bytes(r.le()?) as u64;
                    self.memo_get(key)?;
                }
                0x82..=0x84 => return err("EXT opcodes (the copyreg registry) are not supported"),
                0x97 | 0x98 => return err("out-of-band buffers (protocol 5) are not supported"),
                other => {
                    return err(format!(
                        "unknown opcode 0x{other:02x} at offset {}",
                        r.pos - 1
                    ));
                }
            }
        }
    }
}

fn kind(n: &Node) -> &'static str {
    match n {
        Node::None => "None",
        Node::Bool(_) => "a bool",
        Node::Int(_) | Node::BigInt(_) => "an int",
        Node::Float(_) => "a float",
        Node::Str(_) => "a str",
        Node::Bytes(_) => "bytes",
        Node::List(_) => "a list",
        Node::Tuple(_) => "a tuple",
        Node::Dict(_) => "a dict",
        Node::Set(_) => "a set",
        Node::Global { .. } => "a global",
        Node::Object { .. } => "an object",
        Node::Persistent(_) => "a persistent id",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Vec<u8> {
        crate::testing::fixture("pickle", name)
    }

    #[test]
    fn plain_data_reads_as_python_sees_it_at_every_protocol() {
        // scripts/pickle_fixtures.py: Python's own pickles and its view of the value.
        let want: serde_json::Value =
            serde_json::from_slice(&fixture("data.json")).expect("data.json");
        for proto in [0, 2, 4, 5] {
            let p = Pickle::parse(&fixture(&format!("data-p{proto}.pkl"))).unwrap();
            assert_eq!(p.plain_json(p.root), Some(want.clone()), "protocol {proto}");
        }
    }

    #[test]
    fn the_memo_shares_nodes_as_python_shares_objects() {
        // The list is memoized empty, then filled; both references see the items.
        let p = Pickle::parse(&fixture("data-p4.pkl")).unwrap();
        let shared = p.get(p.root, "shared").unwrap();
        let [a, b] = p.elements(shared).unwrap() else {
            panic!("two references")
        };
        assert_eq!(a, b);
        assert_eq!(p.elements(*a).unwrap().len(), 2);
    }

    #[test]
    fn calls_are_described_never_made() {
        for proto in [0, 4] {
            let p = Pickle::parse(&fixture(&format!("exploit-p{proto}.pkl"))).unwrap();
            assert_eq!(
                p.to_json(p.root),
                json!({ "call": { "global": "posix.system" }, "args": ["touch pwned"] }),
                "protocol {proto}"
            );
            assert_eq!(p.plain_json(p.root), None);
        }
        assert!(!std::path::Path::new("pwned").exists());
        for proto in [2, 4] {
            let p = Pickle::parse(&fixture(&format!("object-p{proto}.pkl"))).unwrap();
            assert_eq!(
                p.to_json(p.root),
                json!({
                    "new": { "global": "__main__.Thing" },
                    "args": [],
                    "state": { "dict": [["weights", { "list": [1.0, 2.0] }], ["name", "thing"]] },
                }),
                "protocol {proto}"
            );
        }
    }

    #[test]
    fn damaged_pickles_are_errors_not_panics() {
        let data = fixture("data-p2.pkl");
        for n in 0..data.len() - 1 {
            assert!(Pickle::parse(&data[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..200 {
            let mut d = data.clone();
            let i = (rng.uniform() * d.len() as f64) as usize % d.len();
            d[i] = (rng.uniform() * 256.0) as u8;
            let _ = Pickle::parse(&d);
        }
        assert_eq!(
            Pickle::parse(b"\x80\x06.").unwrap_err().0,
            "pickle protocol 6 is newer than 5"
        );
    }

    #[test]
    fn big_decimal_longs_match_python_encode_long() {
        // pickle.encode_long(2**70), (-2**70), 255, -256
        assert_eq!(decimal_to_le("1180591620717411303424").unwrap(), {
            let mut v = vec![0u8; 9];
            v[8] = 0x40;
            v
        });
        assert_eq!(decimal_to_le("255").unwrap(), vec![0xff, 0x00]);
        assert_eq!(decimal_to_le("-256").unwrap(), vec![0x00, 0xff]);
        assert_eq!(long(&[0x00, 0xff]), Node::Int(-256));
    }
}
