//! `mapping_<class>.npy`: the `{label: ROI name}` dicts that the Algonauts release saves with
//! `np.save(path, {1: 'V1v', ...})`.
//!
//! Such a file is an `.npy` with dtype `|O` and shape `()` whose payload is a pickle of a 0-d
//! object ndarray: `numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')` (numpy 1.x;
//! `numpy._core.multiarray` in numpy 2) with `BUILD` state
//! `(1, (), dtype('O8'), False, [the_dict])`. Keys may be Python ints or numpy integer scalars,
//! values Python strs, bytes or numpy `str_` scalars; all are accepted.
//!
//! [`write_mapping`] writes what numpy 1.26's `np.save` writes (pickle protocol 3,
//! `numpy.core.multiarray`), which both numpy 1.x and 2.x load with
//! `np.load(path, allow_pickle=True).item()`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use super::DataError;
use super::npy::{self, Dtype};
use super::pickle::{PickleWriter, PyObj, unpickle};

/// Read a `mapping_<class>.npy` file into `label -> ROI name`.
pub fn read_mapping(path: &Path) -> Result<BTreeMap<i32, String>, DataError> {
    let (mut file, header) = npy::open_with_header(path, "pickled ROI mapping dict {label: name}")?;
    if header.dtype != Some(Dtype::Object) {
        return Err(DataError::NotADict {
            path: path.to_path_buf(),
            found: format!("a numeric array (dtype {}, shape {:?})", header.descr, header.shape),
        });
    }
    let mut payload = Vec::new();
    file.read_to_end(&mut payload).map_err(|e| DataError::io(path, "read", e))?;
    let value = unpickle(&payload)
        .map_err(|reason| DataError::Pickle { path: path.to_path_buf(), reason })?;
    let dict = find_dict(&value)
        .map_err(|found| DataError::NotADict { path: path.to_path_buf(), found })?;
    let mut out = BTreeMap::new();
    for (k, v) in dict {
        let key = as_int(&k).ok_or_else(|| DataError::NotADict {
            path: path.to_path_buf(),
            found: format!("a dict with key {} (expected int labels)", k.type_name()),
        })?;
        let name = as_str(&v).ok_or_else(|| DataError::NotADict {
            path: path.to_path_buf(),
            found: format!(
                "a dict whose value for label {key} is {} (expected str names)",
                v.type_name()
            ),
        })?;
        out.insert(key, name);
    }
    Ok(out)
}

/// Unwrap the 0-d object array around the dict (or accept a bare pickled dict).
/// On failure returns a description of what was found.
fn find_dict(value: &PyObj) -> Result<Vec<(PyObj, PyObj)>, String> {
    match value {
        PyObj::Dict(d) => Ok(d.borrow().clone()),
        PyObj::Object(inst) => {
            let inst = inst.borrow();
            match inst.func.as_global() {
                Some((m, "_reconstruct")) if m.ends_with("core.multiarray") => {}
                _ => return Err(value.type_name()),
            }
            // state = (version, shape, dtype, is_fortran, data)
            let Some(PyObj::Tuple(state)) = &inst.state else {
                return Err("a numpy array without state".into());
            };
            let (Some(PyObj::Tuple(shape)), Some(data)) = (state.get(1), state.last()) else {
                return Err("a numpy array with unexpected state".into());
            };
            if !shape.is_empty() {
                let dims: Vec<String> = shape
                    .iter()
                    .map(|d| match d {
                        PyObj::Int(i) => i.to_string(),
                        _ => "?".into(),
                    })
                    .collect();
                return Err(format!(
                    "an object array of shape ({}), not a single dict",
                    dims.join(", ")
                ));
            }
            match data {
                PyObj::List(items) => match items.borrow().as_slice() {
                    [PyObj::Dict(d)] => Ok(d.borrow().clone()),
                    [other] => Err(other.type_name()),
                    _ => Err("an empty object array".into()),
                },
                other => Err(format!("a numpy array whose data is {}", other.type_name())),
            }
        }
        other => Err(other.type_name()),
    }
}

/// Is `obj` a `numpy.core.multiarray.scalar(dtype, bytes)` call? Returns (dtype str, bytes).
fn numpy_scalar(obj: &PyObj) -> Option<(String, Vec<u8>)> {
    let PyObj::Object(inst) = obj else {
        return None;
    };
    let inst = inst.borrow();
    match inst.func.as_global() {
        Some((m, "scalar")) if m.ends_with("core.multiarray") => {}
        _ => return None,
    }
    let (Some(PyObj::Object(dt)), Some(PyObj::Bytes(bytes))) =
        (inst.args.first(), inst.args.get(1))
    else {
        return None;
    };
    let dt = dt.borrow();
    let Some(PyObj::Str(code)) = dt.args.first() else {
        return None;
    };
    // Byte order is the second field of the dtype's BUILD state: (3, '<', ...).
    let order = match &dt.state {
        Some(PyObj::Tuple(s)) => match s.get(1) {
            Some(PyObj::Str(o)) => o.clone(),
            _ => "<".into(),
        },
        _ => "<".into(),
    };
    if order == ">" {
        return None;
    }
    Some((code.clone(), bytes.clone()))
}

fn as_int(obj: &PyObj) -> Option<i32> {
    match obj {
        PyObj::Int(i) => i32::try_from(*i).ok(),
        PyObj::Bool(b) => Some(*b as i32),
        _ => {
            let (code, b) = numpy_scalar(obj)?;
            let v: i64 = match (code.as_bytes().first()?, b.len()) {
                (b'i', 1) => b[0] as i8 as i64,
                (b'i', 2) => i16::from_le_bytes([b[0], b[1]]) as i64,
                (b'i', 4) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
                (b'i', 8) => i64::from_le_bytes(b.as_slice().try_into().ok()?),
                (b'u', 1) => b[0] as i64,
                (b'u', 2) => u16::from_le_bytes([b[0], b[1]]) as i64,
                (b'u', 4) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
                (b'u', 8) => {
                    i64::try_from(u64::from_le_bytes(b.as_slice().try_into().ok()?)).ok()?
                }
                _ => return None,
            };
            i32::try_from(v).ok()
        }
    }
}

fn as_str(obj: &PyObj) -> Option<String> {
    match obj {
        PyObj::Str(s) => Some(s.clone()),
        PyObj::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => {
            let (code, b) = numpy_scalar(obj)?;
            match code.as_bytes().first()? {
                // numpy str_: UCS-4 little-endian, NUL-padded.
                b'U' => b
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .take_while(|&c| c != 0)
                    .map(char::from_u32)
                    .collect(),
                b'S' => Some(
                    String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or(&[]))
                        .into_owned(),
                ),
                _ => None,
            }
        }
    }
}

/// Write `labels` as a `mapping_<class>.npy` file that `np.load(path, allow_pickle=True).item()`
/// reads back as `{int: str}` (the same bytes numpy 1.26's `np.save(path, dict)` produces).
/// The file is written to a temporary name and renamed, so a failure leaves nothing behind.
pub fn write_mapping(path: &Path, labels: &BTreeMap<i32, String>) -> Result<(), DataError> {
    let mut p = PickleWriter::new();
    // numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')
    p.global("numpy.core.multiarray", "_reconstruct");
    p.global("numpy", "ndarray");
    p.int(0).op(0x85).put(); // TUPLE1
    p.bytes(b"b");
    p.op(0x87).put().op(b'R').put(); // TUPLE3, REDUCE
    // BUILD state: (1, (), dtype('O8'), False, [dict])
    p.op(b'(').int(1).op(b')');
    p.global("numpy", "dtype");
    p.str("O8").op(0x89).op(0x88).op(0x87).put().op(b'R').put(); // ('O8', False, True) -> dtype
    p.op(b'(')
        .int(3)
        .str("|")
        .op(b'N')
        .op(b'N')
        .op(b'N')
        .int(-1)
        .int(-1)
        .int(63)
        .op(b't')
        .put()
        .op(b'b');
    p.op(0x89); // is_fortran = False
    p.op(b']').put();
    p.op(b'}').put();
    if !labels.is_empty() {
        p.op(b'(');
        for (k, v) in labels {
            p.int(*k as i64).str(v);
        }
        p.op(b'u'); // SETITEMS
    }
    p.op(b'a'); // APPEND the dict to the data list
    p.op(b't').put().op(b'b'); // state tuple, BUILD
    let pickle = p.finish();
    npy::write_atomically(path, |w| {
        w.write_all(&npy::header_bytes("|O", &[]))?;
        w.write_all(&pickle)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_rust() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapping_x.npy");
        let labels: BTreeMap<i32, String> =
            [(0, "Unknown"), (1, "V1v"), (300, "FFA-1"), (70000, "ünï")]
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect();
        write_mapping(&path, &labels).unwrap();
        assert_eq!(read_mapping(&path).unwrap(), labels);
    }

    #[test]
    fn numeric_array_is_not_a_dict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapping_x.npy");
        npy::write_i32(&path, &[3], &[1, 2, 3]).unwrap();
        let err = read_mapping(&path).unwrap_err().to_string();
        assert!(err.contains("mapping_x.npy") && err.contains("dict"), "{err}");
    }
}
