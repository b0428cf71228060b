//! A minimal pickle machine for the object arrays that `np.save(path, some_dict)` writes, and a
//! writer for the same.
//!
//! Only what numpy's pickles use is supported (protocols 0-5: ints, strings, bytes, tuples,
//! lists, dicts, globals, `REDUCE`/`BUILD`/`NEWOBJ`). Nothing is executed: a global call becomes
//! a [`PyObj::Object`] that records the callable's name, its arguments and its state, and the
//! caller interprets the few numpy constructors it expects (`_reconstruct`, `scalar`, `dtype`).

use std::cell::RefCell;
use std::rc::Rc;

/// A value built by the pickle machine.
#[derive(Debug, Clone)]
pub enum PyObj {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int that fits in 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// A bytes object (also Python 2 `str` in old pickles).
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<PyObj>),
    /// A list (shared: pickles mutate lists after memoising them).
    List(Rc<RefCell<Vec<PyObj>>>),
    /// A dict as insertion-ordered pairs (shared, like lists).
    Dict(Rc<RefCell<Vec<(PyObj, PyObj)>>>),
    /// A reference to `module.name`.
    Global {
        /// Module path, e.g. `numpy.core.multiarray`.
        module: String,
        /// Attribute, e.g. `_reconstruct`.
        name: String,
    },
    /// The result of calling a global (never executed): callable, arguments and `BUILD` state.
    Object(Rc<RefCell<Instance>>),
}

/// A recorded call `func(*args)` and the state `BUILD` set on its result.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The callable (normally a [`PyObj::Global`]).
    pub func: PyObj,
    /// Positional arguments.
    pub args: Vec<PyObj>,
    /// What `BUILD` passed to `__setstate__`, if anything.
    pub state: Option<PyObj>,
}

impl PyObj {
    /// A short Python-ish name of the value's type, for error messages.
    pub fn type_name(&self) -> String {
        match self {
            PyObj::None => "None".into(),
            PyObj::Bool(_) => "a bool".into(),
            PyObj::Int(_) => "an int".into(),
            PyObj::Float(_) => "a float".into(),
            PyObj::Str(_) => "a str".into(),
            PyObj::Bytes(_) => "bytes".into(),
            PyObj::Tuple(_) => "a tuple".into(),
            PyObj::List(_) => "a list".into(),
            PyObj::Dict(_) => "a dict".into(),
            PyObj::Global { module, name } => format!("a reference to {module}.{name}"),
            PyObj::Object(inst) => match &inst.borrow().func {
                PyObj::Global { module, name } => format!("a {module}.{name}(...) object"),
                _ => "an object".into(),
            },
        }
    }

    /// `Some((module, name))` when this is a global reference.
    pub fn as_global(&self) -> Option<(&str, &str)> {
        match self {
            PyObj::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }
}

/// Run the pickle machine over `data` and return the pickled value.
/// Errors are plain descriptions; the caller adds the file name.
pub fn unpickle(data: &[u8]) -> Result<PyObj, String> {
    Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: Vec::new() }.run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<PyObj>,
    marks: Vec<usize>,
    memo: Vec<Option<PyObj>>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            format!("pickle truncated at byte {} (wanted {n} more bytes)", self.pos)
        })?;
        let s: &'a [u8] = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Result<usize, String> {
        let b = self.take(8)?;
        let v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        usize::try_from(v).map_err(|_| format!("length {v} too large"))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("pickle truncated in a text line")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<PyObj, String> {
        self.stack.pop().ok_or_else(|| format!("pickle stack underflow at byte {}", self.pos))
    }

    fn pop_mark(&mut self) -> Result<Vec<PyObj>, String> {
        let mark =
            self.marks.pop().ok_or_else(|| format!("pickle MARK missing at byte {}", self.pos))?;
        if mark > self.stack.len() {
            return Err(format!("pickle MARK beyond stack at byte {}", self.pos));
        }
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut PyObj, String> {
        let pos = self.pos;
        self.stack.last_mut().ok_or_else(|| format!("pickle stack empty at byte {pos}"))
    }

    fn memo_put(&mut self, idx: usize) -> Result<(), String> {
        let v = self.top()?.clone();
        if idx > 10_000_000 {
            return Err(format!("memo index {idx} unreasonably large"));
        }
        if self.memo.len() <= idx {
            self.memo.resize(idx + 1, None);
        }
        self.memo[idx] = Some(v);
        Ok(())
    }

    fn memo_get(&mut self, idx: usize) -> Result<(), String> {
        let v = self
            .memo
            .get(idx)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("memo entry {idx} missing"))?;
        self.stack.push(v);
        Ok(())
    }

    fn push_int_bytes(&mut self, b: &[u8]) -> Result<(), String> {
        // Little-endian two's complement, as LONG1 / LONG4 store it.
        if b.is_empty() {
            self.stack.push(PyObj::Int(0));
            return Ok(());
        }
        if b.len() > 8 {
            return Err(format!("integer of {} bytes does not fit in 64 bits", b.len()));
        }
        let neg = b[b.len() - 1] & 0x80 != 0;
        let mut buf = if neg { [0xffu8; 8] } else { [0u8; 8] };
        buf[..b.len()].copy_from_slice(b);
        self.stack.push(PyObj::Int(i64::from_le_bytes(buf)));
        Ok(())
    }

    fn add_items(&mut self, target: &PyObj, items: Vec<PyObj>) -> Result<(), String> {
        match target {
            PyObj::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            other => Err(format!("APPEND to {}", other.type_name())),
        }
    }

    fn set_items(&mut self, target: &PyObj, items: Vec<PyObj>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of items".into());
        }
        match target {
            PyObj::Dict(d) => {
                let mut d = d.borrow_mut();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            other => Err(format!("SETITEM on {}", other.type_name())),
        }
    }

    fn run(mut self) -> Result<PyObj, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO n
                }
                0x95 => {
                    self.take(8)?; // FRAME len (frames are just hints)
                }
                b'.' => return self.pop(),                 // STOP
                b'(' => self.marks.push(self.stack.len()), // MARK
                b'0' => {
                    self.pop()?; // POP
                }
                b'1' => {
                    self.pop_mark()?; // POP_MARK
                }
                b'2' => {
                    let v = self.top()?.clone(); // DUP
                    self.stack.push(v);
                }
                b'N' => self.stack.push(PyObj::None),
                0x88 => self.stack.push(PyObj::Bool(true)),
                0x89 => self.stack.push(PyObj::Bool(false)),
                b'J' => {
                    let b = self.take(4)?;
                    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.stack.push(PyObj::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(PyObj::Int(v as i64));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(PyObj::Int(v as i64));
                }
                0x8a => {
                    let n = self.u8()? as usize; // LONG1
                    let b = self.take(n)?.to_vec();
                    self.push_int_bytes(&b)?;
                }
                0x8b => {
                    let n = self.u32()?; // LONG4
                    let b = self.take(n)?.to_vec();
                    self.push_int_bytes(&b)?;
                }
                b'I' => {
                    // INT (protocol 0): also encodes True/False as 01/00.
                    let s = self.line()?;
                    let v = match s.as_str() {
                        "01" => PyObj::Bool(true),
                        "00" => PyObj::Bool(false),
                        s => PyObj::Int(s.trim().parse().map_err(|_| format!("bad INT '{s}'"))?),
                    };
                    self.stack.push(v);
                }
                b'L' => {
                    let s = self.line()?; // LONG (protocol 0)
                    let v = s
                        .trim()
                        .trim_end_matches('L')
                        .parse()
                        .map_err(|_| format!("bad LONG '{s}'"))?;
                    self.stack.push(PyObj::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?; // BINFLOAT (big-endian)
                    self.stack
                        .push(PyObj::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))));
                }
                b'F' => {
                    let s = self.line()?;
                    self.stack.push(PyObj::Float(
                        s.trim().parse().map_err(|_| format!("bad FLOAT '{s}'"))?,
                    ));
                }
                0x8c | b'X' | 0x8d => {
                    // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
                    let n = match op {
                        0x8c => self.u8()? as usize,
                        b'X' => self.u32()?,
                        _ => self.u64()?,
                    };
                    let b = self.take(n)?;
                    let s = std::str::from_utf8(b)
                        .map_err(|_| format!("invalid UTF-8 string at byte {at}"))?;
                    self.stack.push(PyObj::Str(s.to_owned()));
                }
                b'V' => {
                    let s = self.line()?; // UNICODE (protocol 0, raw-unicode-escape; ASCII suffices here)
                    self.stack.push(PyObj::Str(s));
                }
                b'U' | b'T' => {
                    // SHORT_BINSTRING, BINSTRING (Python 2 str)
                    let n = if op == b'U' { self.u8()? as usize } else { self.u32()? };
                    let b = self.take(n)?.to_vec();
                    self.stack.push(PyObj::Bytes(b));
                }
                b'S' => {
                    let s = self.line()?; // STRING (protocol 0, quoted repr)
                    let t = s.trim();
                    let inner = t.get(1..t.len().saturating_sub(1)).unwrap_or("");
                    self.stack.push(PyObj::Bytes(inner.as_bytes().to_vec()));
                }
                b'C' | b'B' | 0x8e => {
                    // SHORT_BINBYTES, BINBYTES, BINBYTES8
                    let n = match op {
                        b'C' => self.u8()? as usize,
                        b'B' => self.u32()?,
                        _ => self.u64()?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.stack.push(PyObj::Bytes(b));
                }
                0x96 => {
                    let n = self.u64()?; // BYTEARRAY8
                    let b = self.take(n)?.to_vec();
                    self.stack.push(PyObj::Bytes(b));
                }
                b')' => self.stack.push(PyObj::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(PyObj::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize; // TUPLE1..3
                    if self.stack.len() < n {
                        return Err(format!("pickle stack underflow at byte {at}"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(PyObj::Tuple(items));
                }
                b']' => self.stack.push(PyObj::List(Rc::new(RefCell::new(Vec::new())))),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(PyObj::List(Rc::new(RefCell::new(items))));
                }
                b'a' => {
                    let v = self.pop()?;
                    let target = self.top()?.clone();
                    self.add_items(&target, vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.clone();
                    self.add_items(&target, items)?;
                }
                b'}' => self.stack.push(PyObj::Dict(Rc::new(RefCell::new(Vec::new())))),
                b'd' => {
                    let items = self.pop_mark()?;
                    let d = PyObj::Dict(Rc::new(RefCell::new(Vec::new())));
                    self.set_items(&d, items)?;
                    self.stack.push(d);
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let target = self.top()?.clone();
                    self.set_items(&target, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.clone();
                    self.set_items(&target, items)?;
                }
                // Sets are kept as lists: EMPTY_SET, ADDITEMS, FROZENSET.
                0x8f => self.stack.push(PyObj::List(Rc::new(RefCell::new(Vec::new())))),
                0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.clone();
                    self.add_items(&target, items)?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.stack.push(PyObj::List(Rc::new(RefCell::new(items))));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(PyObj::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (PyObj::Str(module), PyObj::Str(name)) => {
                            self.stack.push(PyObj::Global { module, name })
                        }
                        _ => return Err(format!("STACK_GLOBAL without two strings at byte {at}")),
                    }
                }
                b'R' | 0x81 => {
                    // REDUCE func(*args) / NEWOBJ cls.__new__(cls, *args)
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let args = match args {
                        PyObj::Tuple(a) => a,
                        other => {
                            return Err(format!(
                                "call arguments are {} at byte {at}",
                                other.type_name()
                            ));
                        }
                    };
                    self.stack.push(PyObj::Object(Rc::new(RefCell::new(Instance {
                        func,
                        args,
                        state: None,
                    }))));
                }
                0x92 => {
                    // NEWOBJ_EX cls, args, kwargs
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let args = match args {
                        PyObj::Tuple(a) => a,
                        other => {
                            return Err(format!(
                                "call arguments are {} at byte {at}",
                                other.type_name()
                            ));
                        }
                    };
                    self.stack.push(PyObj::Object(Rc::new(RefCell::new(Instance {
                        func,
                        args,
                        state: None,
                    }))));
                }
                b'b' => {
                    let state = self.pop()?; // BUILD
                    match self.top()? {
                        PyObj::Object(inst) => inst.borrow_mut().state = Some(state),
                        other => {
                            return Err(format!("BUILD on {} at byte {at}", other.type_name()));
                        }
                    }
                }
                b'p' => {
                    let s = self.line()?;
                    let idx = s.trim().parse().map_err(|_| format!("bad PUT '{s}'"))?;
                    self.memo_put(idx)?;
                }
                b'q' => {
                    let idx = self.u8()? as usize;
                    self.memo_put(idx)?;
                }
                b'r' => {
                    let idx = self.u32()?;
                    self.memo_put(idx)?;
                }
                0x94 => {
                    let idx = self.memo.len(); // MEMOIZE
                    self.memo_put(idx)?;
                }
                b'g' => {
                    let s = self.line()?;
                    let idx = s.trim().parse().map_err(|_| format!("bad GET '{s}'"))?;
                    self.memo_get(idx)?;
                }
                b'h' => {
                    let idx = self.u8()? as usize;
                    self.memo_get(idx)?;
                }
                b'j' => {
                    let idx = self.u32()?;
                    self.memo_get(idx)?;
                }
                other => {
                    return Err(format!("unsupported pickle opcode 0x{other:02x} at byte {at}"));
                }
            }
        }
    }
}

/// Writes pickles with protocol 3 opcodes (what numpy 1.x's `np.save` emits; numpy 2 reads it).
#[derive(Default)]
pub struct PickleWriter {
    out: Vec<u8>,
    memo: u32,
}

impl PickleWriter {
    /// Start a protocol 3 pickle.
    pub fn new() -> Self {
        PickleWriter { out: vec![0x80, 3], memo: 0 }
    }

    /// `GLOBAL module name`, memoised.
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.out.push(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'\n');
        self.put()
    }

    /// Memoise the top of the stack (`BINPUT`/`LONG_BINPUT`); returns the index via `last_memo`.
    pub fn put(&mut self) -> &mut Self {
        let idx = self.memo;
        self.memo += 1;
        if idx < 256 {
            self.out.extend_from_slice(&[b'q', idx as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend_from_slice(&idx.to_le_bytes());
        }
        self
    }

    /// Index of the most recent memo entry.
    pub fn last_memo(&self) -> u32 {
        self.memo - 1
    }

    /// Push a memo entry (`BINGET`/`LONG_BINGET`).
    pub fn get(&mut self, idx: u32) -> &mut Self {
        if idx < 256 {
            self.out.extend_from_slice(&[b'h', idx as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend_from_slice(&idx.to_le_bytes());
        }
        self
    }

    /// Push an int (`BININT1`/`BININT2`/`BININT`/`LONG1`).
    pub fn int(&mut self, v: i64) -> &mut Self {
        if (0..256).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..65536).contains(&v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.out.extend_from_slice(&[0x8a, 8]);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    /// Push a str (`BINUNICODE`), memoised.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.out.push(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        self.put()
    }

    /// Push bytes (`SHORT_BINBYTES`/`BINBYTES`), memoised.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        if b.len() < 256 {
            self.out.extend_from_slice(&[b'C', b.len() as u8]);
        } else {
            self.out.push(b'B');
            self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(b);
        self.put()
    }

    /// Emit a raw opcode (e.g. `b'('` MARK, `b't'` TUPLE, `b'R'` REDUCE, `b'b'` BUILD).
    pub fn op(&mut self, op: u8) -> &mut Self {
        self.out.push(op);
        self
    }

    /// Finish with `STOP` and return the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'.');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        let mut w = PickleWriter::new();
        w.op(b'}').put().op(b'(').int(1).str("a").int(70000).str("b").int(-5).str("c").op(b'u');
        let bytes = w.finish();
        let v = unpickle(&bytes).unwrap();
        let PyObj::Dict(d) = v else { panic!("not a dict: {v:?}") };
        let d = d.borrow();
        let keys: Vec<i64> =
            d.iter().map(|(k, _)| if let PyObj::Int(i) = k { *i } else { 0 }).collect();
        assert_eq!(keys, vec![1, 70000, -5]);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// `pickle.dumps({1: 'V1v', 300: 'FFA-1', 70000: 'x', -2: 'neg'}, protocol=p)` from CPython
    /// 3.11 for p = 0, 2, 4 (p = 4 adds `5: frozenset([1])`).
    #[test]
    fn reads_cpython_protocols() {
        let cases = [
            "286470300a49310a565631760a70310a73493330300a564646412d310a70320a734937303030300a56780a70330a73492d320a566e65670a70340a732e",
            "80027d7100284b01580300000056317671014d2c0158050000004646412d3171024a7011010058010000007871034afeffffff58030000006e65677104752e",
            "80049533000000000000007d94284b018c03563176944d2c018c054646412d31944a701101008c0178944afeffffff8c036e6567944b05284b019194752e",
        ];
        for c in cases {
            let PyObj::Dict(d) = unpickle(&hex(c)).unwrap() else { panic!("not a dict") };
            let d = d.borrow();
            let pairs: Vec<(i64, String)> = d
                .iter()
                .filter_map(|(k, v)| match (k, v) {
                    (PyObj::Int(k), PyObj::Str(v)) => Some((*k, v.clone())),
                    _ => None,
                })
                .collect();
            assert_eq!(
                pairs,
                vec![
                    (1, "V1v".into()),
                    (300, "FFA-1".into()),
                    (70000, "x".into()),
                    (-2, "neg".into())
                ]
            );
        }
    }

    #[test]
    fn truncated_pickle_is_an_error() {
        let mut w = PickleWriter::new();
        w.op(b'}').put().op(b'(').int(1).str("abc").op(b'u');
        let bytes = w.finish();
        let err = unpickle(&bytes[..bytes.len() - 6]).unwrap_err();
        assert!(
            err.contains("truncated") || err.contains("underflow") || err.contains("MARK"),
            "{err}"
        );
    }
}
