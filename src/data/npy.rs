//! `.npy` files: header parsing, memory-mapped float matrices, small vector readers, writers.
//!
//! Big arrays are never copied whole: [`NpyMatrix`] memory-maps the file; f32 rows are borrowed
//! straight from the map (zero-copy), f64 and f16 rows are converted one row at a time into a
//! caller-provided buffer. Arrays must be little-endian and in C (row-major) order.

use half::f16;
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::DataError;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Streaming readers drop the mapped pages they touched after reading this many bytes.
pub const RELEASE_EVERY_BYTES: usize = 32 << 20;

/// Element type of an array, from its numpy `descr` (byte order already checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `<f2`.
    F16,
    /// `<f4`.
    F32,
    /// `<f8`.
    F64,
    /// Signed integer of the given byte width (`i1`, `<i2`, `<i4`, `<i8`).
    Int(usize),
    /// Unsigned integer of the given byte width.
    UInt(usize),
    /// `|b1`.
    Bool,
    /// `|O`: pickled Python objects.
    Object,
}

impl Dtype {
    /// numpy's name of the type, e.g. `float32`.
    pub fn numpy_name(self) -> String {
        match self {
            Dtype::F16 => "float16".into(),
            Dtype::F32 => "float32".into(),
            Dtype::F64 => "float64".into(),
            Dtype::Int(n) => format!("int{}", n * 8),
            Dtype::UInt(n) => format!("uint{}", n * 8),
            Dtype::Bool => "bool".into(),
            Dtype::Object => "object".into(),
        }
    }

    /// Bytes per element (objects: 0, their payload is a pickle).
    pub fn size(self) -> usize {
        match self {
            Dtype::F16 => 2,
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::Int(n) | Dtype::UInt(n) => n,
            Dtype::Bool => 1,
            Dtype::Object => 0,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone)]
pub struct NpyHeader {
    /// The `descr` string as written (e.g. `<f4`), for messages.
    pub descr: String,
    /// The element type, or `None` for types this crate does not read (structured, big-endian,
    /// strings, complex, ...).
    pub dtype: Option<Dtype>,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The shape.
    pub shape: Vec<usize>,
    /// Byte offset of the data from the start of the file.
    pub data_offset: usize,
}

/// Parse a numpy `descr` into a [`Dtype`]; `None` when unsupported (incl. big-endian).
fn parse_descr(descr: &str) -> Option<Dtype> {
    let (order, ty) = match descr.as_bytes().first() {
        Some(b'<' | b'|' | b'=' | b'>') => descr.split_at(1),
        _ => ("", descr),
    };
    let kind = ty.chars().next()?;
    let size: usize = if ty.len() > 1 { ty[1..].parse().ok()? } else { 0 };
    if order == ">" && size > 1 {
        return None; // big-endian: not supported
    }
    match (kind, size) {
        ('f', 2) => Some(Dtype::F16),
        ('f', 4) => Some(Dtype::F32),
        ('f', 8) => Some(Dtype::F64),
        ('i', 1 | 2 | 4 | 8) => Some(Dtype::Int(size)),
        ('u', 1 | 2 | 4 | 8) => Some(Dtype::UInt(size)),
        ('b', 1) => Some(Dtype::Bool),
        ('O', _) => Some(Dtype::Object),
        _ => None,
    }
}

/// A tiny Python literal, enough for npy header dicts.
#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Int(i64),
    Bool(bool),
    None,
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

struct LitParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl LitParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at header byte {}", c as char, self.i))
        }
    }

    fn seq(&mut self, close: u8) -> Result<Vec<Lit>, String> {
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or '{}' at header byte {}",
                        close as char, self.i
                    ));
                }
            }
        }
    }

    fn value(&mut self) -> Result<Lit, String> {
        match self.peek().ok_or("header ends early")? {
            b'{' => {
                self.i += 1;
                let mut pairs = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Lit::Dict(pairs));
                    }
                    let k = self.value()?;
                    self.expect(b':')?;
                    let v = self.value()?;
                    pairs.push((k, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at header byte {}", self.i)),
                    }
                }
            }
            b'(' => {
                self.i += 1;
                Ok(Lit::Seq(self.seq(b')')?))
            }
            b'[' => {
                self.i += 1;
                Ok(Lit::Seq(self.seq(b']')?))
            }
            q @ (b'\'' | b'"') => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err("unterminated string in header".into());
                }
                let s = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Lit::Str(s))
            }
            c if c.is_ascii_digit() || c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                // Python 2 era headers may write longs as `3L`.
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1;
                }
                text.parse().map(Lit::Int).map_err(|_| format!("bad integer '{text}' in header"))
            }
            _ => {
                for (word, lit) in
                    [("True", Lit::Bool(true)), ("False", Lit::Bool(false)), ("None", Lit::None)]
                {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(lit);
                    }
                }
                Err(format!("unexpected character at header byte {}", self.i))
            }
        }
    }
}

/// Read and parse the header of an `.npy` file from `reader` (positioned at the start).
pub fn read_header<R: Read>(reader: &mut R, path: &Path) -> Result<NpyHeader, DataError> {
    let bad = |reason: String| DataError::NpyFormat { path: path.to_path_buf(), reason };
    let mut pre = [0u8; 8];
    reader.read_exact(&mut pre).map_err(|_| bad("file shorter than the npy preamble".into()))?;
    if &pre[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic (not an .npy file)".into()));
    }
    let (len, pre_len) = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            reader.read_exact(&mut b).map_err(|_| bad("truncated header length".into()))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            reader.read_exact(&mut b).map_err(|_| bad("truncated header length".into()))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return Err(bad(format!("unknown npy format version {v}"))),
    };
    if len > 1 << 24 {
        return Err(bad(format!("header length {len} is implausible")));
    }
    let mut text = vec![0u8; len];
    reader.read_exact(&mut text).map_err(|_| bad("truncated header".into()))?;
    let lit = LitParser { s: &text, i: 0 }.value().map_err(bad)?;
    let Lit::Dict(pairs) = lit else {
        return Err(bad("header is not a dict".into()));
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in pairs {
        match (k, v) {
            (Lit::Str(k), Lit::Str(d)) if k == "descr" => descr = Some(d),
            (Lit::Str(k), Lit::Seq(_)) if k == "descr" => descr = Some("structured".to_string()),
            (Lit::Str(k), Lit::Bool(b)) if k == "fortran_order" => fortran = Some(b),
            (Lit::Str(k), Lit::Seq(dims)) if k == "shape" => {
                let dims: Option<Vec<usize>> = dims
                    .iter()
                    .map(|d| if let Lit::Int(n) = d { usize::try_from(*n).ok() } else { None })
                    .collect();
                shape = Some(dims.ok_or_else(|| bad("shape holds a non-integer".into()))?);
            }
            _ => {}
        }
    }
    let descr = descr.ok_or_else(|| bad("header lacks 'descr'".into()))?;
    Ok(NpyHeader {
        dtype: parse_descr(&descr),
        descr,
        fortran_order: fortran.ok_or_else(|| bad("header lacks 'fortran_order'".into()))?,
        shape: shape.ok_or_else(|| bad("header lacks 'shape'".into()))?,
        data_offset: pre_len + len,
    })
}

/// Open `path` and read its header; a missing file names `what` it should hold.
pub fn open_with_header(path: &Path, what: &str) -> Result<(File, NpyHeader), DataError> {
    let mut file = File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_path_buf(),
                what: what.to_string(),
                fix: "restore the file from the dataset release (or regenerate the demo)".into(),
            }
        } else {
            DataError::io(path, "open", e)
        }
    })?;
    let header = read_header(&mut file, path)?;
    Ok((file, header))
}

/// A 2-D (or 1-D, seen as one column) float array memory-mapped from an `.npy` file.
///
/// f32 data is read in place; f64 and f16 are converted to f32 row by row on access.
pub struct NpyMatrix {
    path: PathBuf,
    map: Mmap,
    dtype: Dtype,
    rows: usize,
    cols: usize,
    offset: usize,
}

impl std::fmt::Debug for NpyMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpyMatrix")
            .field("path", &self.path)
            .field("dtype", &self.dtype)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish()
    }
}

impl NpyMatrix {
    /// Memory-map a 2-D float array (`<f4`, `<f8` or `<f2`); `what` describes the file for a
    /// "not found" message.
    pub fn open(path: &Path, what: &str) -> Result<Self, DataError> {
        Self::open_rank(path, what, false)
    }

    /// Like [`NpyMatrix::open`], also accepting a 1-D array (seen as one column).
    pub fn open_1d_or_2d(path: &Path, what: &str) -> Result<Self, DataError> {
        Self::open_rank(path, what, true)
    }

    /// Memory-map a float array of rank >= 2 as `[shape[0], product of the rest]` rows (a
    /// `[N, C, h, w]` latent cache: one row per image).
    pub fn open_rows(path: &Path, what: &str) -> Result<Self, DataError> {
        Self::open_shaped(path, what, |shape| match shape {
            [r, rest @ ..] if !rest.is_empty() => Some((*r, rest.iter().product())),
            _ => None,
        })
    }

    fn open_rank(path: &Path, what: &str, allow_1d: bool) -> Result<Self, DataError> {
        Self::open_shaped(path, what, |shape| match shape {
            [r, c] => Some((*r, *c)),
            [r] if allow_1d => Some((*r, 1)),
            _ => None,
        })
    }

    fn open_shaped(
        path: &Path,
        what: &str,
        rows_cols: impl Fn(&[usize]) -> Option<(usize, usize)>,
    ) -> Result<Self, DataError> {
        let (file, h) = open_with_header(path, what)?;
        let dtype = match h.dtype {
            Some(d @ (Dtype::F32 | Dtype::F64 | Dtype::F16)) => d,
            _ => {
                return Err(DataError::Dtype {
                    path: path.to_path_buf(),
                    found: h.descr,
                    expected: "little-endian float32 (<f4), or float64 (<f8) / float16 (<f2), converted on load".into(),
                    hint: "<f4".into(),
                });
            }
        };
        let (rows, cols) = match rows_cols(&h.shape) {
            Some(rc) => rc,
            None => {
                return Err(DataError::Rank {
                    path: path.to_path_buf(),
                    found: h.shape,
                    expected: "a 2-D array [stimuli, vertices]".into(),
                });
            }
        };
        if h.fortran_order && rows > 1 && cols > 1 {
            return Err(DataError::FortranOrder { path: path.to_path_buf() });
        }
        // SAFETY: the file is opened read-only; the map is only read. Another process truncating
        // the file while mapped would fault, as with any mmap-based reader (numpy's included).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| DataError::io(path, "memory-map", e))?;
        let need = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(dtype.size()))
            .and_then(|n| n.checked_add(h.data_offset))
            .ok_or_else(|| DataError::NpyFormat {
                path: path.to_path_buf(),
                reason: "shape overflows".into(),
            })?;
        if map.len() < need {
            return Err(DataError::NpyFormat {
                path: path.to_path_buf(),
                reason: format!(
                    "truncated: shape {:?} needs {need} bytes, file has {}",
                    h.shape,
                    map.len()
                ),
            });
        }
        Ok(NpyMatrix { path: path.to_path_buf(), map, dtype, rows, cols, offset: h.data_offset })
    }

    /// The file this array was mapped from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of rows (stimuli).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (vertices).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The stored element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn row_bytes(&self, row: usize) -> Result<&[u8], DataError> {
        if row >= self.rows {
            return Err(DataError::RowOutOfRange { path: self.path.clone(), row, rows: self.rows });
        }
        let w = self.cols * self.dtype.size();
        let start = self.offset + row * w;
        Ok(&self.map[start..start + w])
    }

    /// Row `row` borrowed from the map when the file is f32 and aligned (zero-copy), else `None`.
    pub fn row_f32_borrowed(&self, row: usize) -> Result<Option<&[f32]>, DataError> {
        let bytes = self.row_bytes(row)?;
        Ok(if self.dtype == Dtype::F32 { bytemuck::try_cast_slice(bytes).ok() } else { None })
    }

    /// Copy row `row` into `out` (length `cols`), converting f64/f16 to f32.
    pub fn read_row_into(&self, row: usize, out: &mut [f32]) -> Result<(), DataError> {
        assert_eq!(out.len(), self.cols, "output buffer must hold one row");
        let bytes = self.row_bytes(row)?;
        match self.dtype {
            Dtype::F32 => match bytemuck::try_cast_slice::<u8, f32>(bytes) {
                Ok(src) => out.copy_from_slice(src),
                Err(_) => {
                    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                }
            },
            Dtype::F64 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                    *o = f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32;
                }
            }
            Dtype::F16 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            _ => unreachable!("NpyMatrix::open accepts only float dtypes"),
        }
        Ok(())
    }

    /// Call `f(i, row)` for each requested row `rows[i]`, borrowing f32 rows from the map and
    /// converting others through one reusable buffer. The map's pages are released every
    /// [`RELEASE_EVERY_BYTES`] and at the end (see [`NpyMatrix::release_all`]), so streaming a
    /// whole file adds at most that much to peak RSS.
    pub fn for_rows(
        &self,
        rows: &[usize],
        mut f: impl FnMut(usize, &[f32]),
    ) -> Result<(), DataError> {
        let mut buf = vec![0f32; if self.dtype == Dtype::F32 { 0 } else { self.cols }];
        let mut since = 0;
        for (i, &r) in rows.iter().enumerate() {
            if let Some(row) = self.row_f32_borrowed(r)? {
                f(i, row);
            } else {
                buf.resize(self.cols, 0.0);
                self.read_row_into(r, &mut buf)?;
                f(i, &buf);
            }
            since += self.row_stride();
            if since >= RELEASE_EVERY_BYTES {
                self.release_all();
                since = 0;
            }
        }
        self.release_all();
        Ok(())
    }

    /// Drop this mapping's resident pages from the process (`MADV_DONTNEED`): the data stays
    /// in the OS page cache and is faulted back in, unchanged, on the next access. Streaming
    /// readers call this every [`RELEASE_EVERY_BYTES`] so the mapped file never adds more than
    /// that to peak RSS. (Releasing only the rows just read is not enough: the kernel maps whole
    /// page-cache folios around a fault, re-mapping neighbours already released.) No-op off Unix.
    pub fn release_all(&self) {
        #[cfg(unix)]
        if !self.map.is_empty() {
            // SAFETY: the map is a read-only MAP_SHARED file mapping. MADV_DONTNEED only discards
            // page-table entries; any later read (including through a borrowed row slice) faults
            // the same file contents back in, so no memory visible to Rust changes.
            let _ = unsafe { self.map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// Bytes of one stored row.
    pub fn row_stride(&self) -> usize {
        self.cols * self.dtype.size()
    }
}

/// Read a small 1-D integer array (e.g. an ROI mask) as i32. Integer dtypes of any width are
/// accepted; float arrays are accepted when every value is integral (some releases store masks
/// as floats).
pub fn read_int_vector(path: &Path, what: &str) -> Result<Vec<i32>, DataError> {
    let (mut file, h) = open_with_header(path, what)?;
    let n = match h.shape.as_slice() {
        [n] => *n,
        _ => {
            return Err(DataError::Rank {
                path: path.to_path_buf(),
                found: h.shape,
                expected: "a 1-D array with one label per vertex".into(),
            });
        }
    };
    let bad_dtype = || DataError::Dtype {
        path: path.to_path_buf(),
        found: h.descr.clone(),
        expected: "a little-endian integer array (labels; 0 = no ROI)".into(),
        hint: "<i4".into(),
    };
    let dtype = match h.dtype {
        Some(Dtype::Object) | None => return Err(bad_dtype()),
        Some(d) => d,
    };
    let mut bytes = Vec::with_capacity(n * dtype.size());
    file.read_to_end(&mut bytes).map_err(|e| DataError::io(path, "read", e))?;
    if bytes.len() < n * dtype.size() {
        return Err(DataError::NpyFormat {
            path: path.to_path_buf(),
            reason: format!(
                "truncated: {n} values need {} bytes, found {}",
                n * dtype.size(),
                bytes.len()
            ),
        });
    }
    let non_integral = |v: f64| DataError::Dtype {
        path: path.to_path_buf(),
        found: format!("{} with non-integer value {v}", h.descr),
        expected: "integer labels".into(),
        hint: "<i4".into(),
    };
    let mut out = Vec::with_capacity(n);
    for c in bytes.chunks_exact(dtype.size()).take(n) {
        let v: f64 = match dtype {
            Dtype::Bool => c[0] as f64,
            Dtype::Int(1) => c[0] as i8 as f64,
            Dtype::Int(2) => i16::from_le_bytes([c[0], c[1]]) as f64,
            Dtype::Int(4) => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            Dtype::Int(_) => i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64,
            Dtype::UInt(1) => c[0] as f64,
            Dtype::UInt(2) => u16::from_le_bytes([c[0], c[1]]) as f64,
            Dtype::UInt(4) => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            Dtype::UInt(_) => u64::from_le_bytes(c.try_into().expect("8 bytes")) as f64,
            Dtype::F16 => f16::from_le_bytes([c[0], c[1]]).to_f64(),
            Dtype::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
            Dtype::F64 => f64::from_le_bytes(c.try_into().expect("8 bytes")),
            Dtype::Object => unreachable!(),
        };
        if v.fract() != 0.0 || !v.is_finite() || v.abs() > i32::MAX as f64 {
            return Err(non_integral(v));
        }
        out.push(v as i32);
    }
    Ok(out)
}

/// The `.npy` version 1.0 header bytes (magic through newline, padded to 64 bytes) for an
/// array of `descr` (e.g. `<f4`), C order, `shape`.
pub fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let total = MAGIC.len() + 4 + dict.len() + 1;
    let pad = (64 - total % 64) % 64;
    dict.extend(std::iter::repeat_n(' ', pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(dict.len() + 10);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Write `bytes` to `path` through a temporary sibling file renamed into place, so a failure
/// never leaves a half-written file.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), DataError> {
    let tmp = tmp_path(path);
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        write(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, "write", e)
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Write a little-endian f32 array of `shape` (C order) to `path`.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), DataError> {
    check_len(path, shape, data.len())?;
    write_atomically(path, |w| {
        w.write_all(&header_bytes("<f4", shape))?;
        for v in data {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })
}

/// Write a little-endian f16 array of `shape` (C order) to `path` (values rounded to f16).
pub fn write_f16(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), DataError> {
    check_len(path, shape, data.len())?;
    write_atomically(path, |w| {
        w.write_all(&header_bytes("<f2", shape))?;
        for v in data {
            w.write_all(&f16::from_f32(*v).to_le_bytes())?;
        }
        Ok(())
    })
}

/// Write a little-endian i32 array of `shape` (C order) to `path`.
pub fn write_i32(path: &Path, shape: &[usize], data: &[i32]) -> Result<(), DataError> {
    check_len(path, shape, data.len())?;
    write_atomically(path, |w| {
        w.write_all(&header_bytes("<i4", shape))?;
        for v in data {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    })
}

fn check_len(path: &Path, shape: &[usize], len: usize) -> Result<(), DataError> {
    let n: usize = shape.iter().product();
    if n != len {
        return Err(DataError::Write {
            path: path.to_path_buf(),
            reason: format!(
                "shape {shape:?} holds {n} values but {len} were given (a bug in the caller)"
            ),
        });
    }
    Ok(())
}

/// Streams a 2-D float array (`<f4`, `<f8` or `<f2`) to disk row by row, for arrays too big
/// to hold. It writes to a temporary sibling that [`RowWriter::finish`] renames into place; a
/// writer dropped before `finish` removes its temporary file, so failures leave nothing behind.
pub struct RowWriter {
    path: PathBuf,
    tmp: PathBuf,
    w: Option<BufWriter<File>>,
    dtype: Dtype,
    cols: usize,
    rows_left: usize,
    bytes: Vec<u8>,
}

impl RowWriter {
    /// Start writing a `[rows, cols]` array of `dtype` (F16, F32 or F64) to `path`.
    pub fn create(path: &Path, dtype: Dtype, rows: usize, cols: usize) -> Result<Self, DataError> {
        let descr = match dtype {
            Dtype::F16 => "<f2",
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
            other => {
                return Err(DataError::Write {
                    path: path.to_path_buf(),
                    reason: format!("RowWriter writes float arrays, not {}", other.numpy_name()),
                });
            }
        };
        let tmp = tmp_path(path);
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, "create", e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut me = RowWriter {
            path: path.to_path_buf(),
            tmp,
            w: None,
            dtype,
            cols,
            rows_left: rows,
            bytes: Vec::with_capacity(cols * dtype.size()),
        };
        w.write_all(&header_bytes(descr, &[rows, cols]))
            .map_err(|e| DataError::io(&me.tmp, "write", e))?;
        me.w = Some(w);
        Ok(me)
    }

    /// Append one row of `cols` values (converted to the file's dtype, little-endian).
    pub fn write_row(&mut self, row: &[f32]) -> Result<(), DataError> {
        if row.len() != self.cols || self.rows_left == 0 {
            return Err(DataError::Write {
                path: self.path.clone(),
                reason: format!(
                    "row of {} values (expected {}, {} rows left)",
                    row.len(),
                    self.cols,
                    self.rows_left
                ),
            });
        }
        self.bytes.clear();
        encode_f32(self.dtype, row, &mut self.bytes);
        let w = self.w.as_mut().expect("writer present until finish");
        w.write_all(&self.bytes).map_err(|e| DataError::io(&self.tmp, "write", e))?;
        self.rows_left -= 1;
        Ok(())
    }

    /// Check every row was written, flush and move the file into place.
    pub fn finish(mut self) -> Result<(), DataError> {
        if self.rows_left != 0 {
            return Err(DataError::Write {
                path: self.path.clone(),
                reason: format!("{} rows were never written", self.rows_left),
            });
        }
        let w = self.w.take().expect("writer present until finish");
        w.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .and_then(|_| std::fs::rename(&self.tmp, &self.path))
            .map_err(|e| DataError::io(&self.path, "write", e))
    }
}

/// Append `values` to `out` as little-endian `dtype` (F32, F64; anything else F16): the bytes of
/// rows of an `.npy` array, for writers that place rows themselves (the resumable latent cache).
pub fn encode_f32(dtype: Dtype, values: &[f32], out: &mut Vec<u8>) {
    match dtype {
        Dtype::F32 if cfg!(target_endian = "little") => {
            out.extend_from_slice(bytemuck::cast_slice(values))
        }
        Dtype::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        Dtype::F64 => values.iter().for_each(|v| out.extend_from_slice(&(*v as f64).to_le_bytes())),
        _ => values.iter().for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
    }
}

impl Drop for RowWriter {
    fn drop(&mut self) {
        // Unfinished (or failed): remove the temporary file. After a successful finish the
        // temporary name no longer exists and this is a no-op.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descr_parsing() {
        assert_eq!(parse_descr("<f4"), Some(Dtype::F32));
        assert_eq!(parse_descr("<f8"), Some(Dtype::F64));
        assert_eq!(parse_descr("<f2"), Some(Dtype::F16));
        assert_eq!(parse_descr("|i1"), Some(Dtype::Int(1)));
        assert_eq!(parse_descr("<i8"), Some(Dtype::Int(8)));
        assert_eq!(parse_descr("|O"), Some(Dtype::Object));
        assert_eq!(parse_descr(">f4"), None);
        assert_eq!(parse_descr("<U3"), None);
    }

    #[test]
    fn row_writer_round_trips_every_float_dtype() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in [Dtype::F32, Dtype::F64, Dtype::F16] {
            let p = dir.path().join(format!("{dtype:?}.npy"));
            let mut w = RowWriter::create(&p, dtype, 2, 3).unwrap();
            w.write_row(&[0.5, -2.0, 3.25]).unwrap();
            w.write_row(&[1.0, 0.0, -0.125]).unwrap();
            w.finish().unwrap();
            let m = NpyMatrix::open(&p, "t").unwrap();
            assert_eq!((m.dtype(), m.rows(), m.cols()), (dtype, 2, 3));
            let mut row = vec![0.0; 3];
            m.read_row_into(1, &mut row).unwrap();
            assert_eq!(row, vec![1.0, 0.0, -0.125]);
        }
        // Unfinished writers leave nothing behind.
        let p = dir.path().join("partial.npy");
        let mut w = RowWriter::create(&p, Dtype::F32, 2, 1).unwrap();
        w.write_row(&[1.0]).unwrap();
        assert!(w.finish().is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn header_roundtrip_is_aligned() {
        for shape in [vec![], vec![7], vec![3, 5], vec![2, 3, 4]] {
            let h = header_bytes("<f4", &shape);
            assert_eq!(h.len() % 64, 0);
            let parsed = read_header(&mut h.as_slice(), Path::new("x.npy")).unwrap();
            assert_eq!(parsed.shape, shape);
            assert_eq!(parsed.dtype, Some(Dtype::F32));
            assert!(!parsed.fortran_order);
            assert_eq!(parsed.data_offset, h.len());
        }
    }
}
