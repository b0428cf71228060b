//! Creating experiments from an existing one: `brainscope new` (one copy with `--set KEY=VALUE`
//! edits) and `brainscope sweep` (one experiment per combination of `--grid KEY=V1,V2,...`
//! values, listed in `experiments/sweep.toml`).
//!
//! The source `experiment.toml` is edited as a `toml` value tree (so keys the source leaves at
//! their defaults, such as a missing `[model]` section, can be set too); the file is rewritten
//! without the source's comments (they describe the source) under a header saying where it came
//! from. Every key is checked against the fields of [`ExperimentConfig`] and every value against
//! its type and valid range before anything is written; a sweep checks all its ids first and
//! writes nothing when one exists. Folders appear atomically (a hidden temp folder renamed).

use super::config::{CONFIG_FILE, ExperimentConfig};
use super::registry::{RegistryError, find};
use super::state::write_atomic;
use crate::data::roi::RoiSet;
use crate::data::roi_table::ROI_CLASSES;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use toml::{Table, Value};

/// File in the experiments folder listing every sweep (`[[sweep]]` entries, newest last).
pub const SWEEP_FILE: &str = "sweep.toml";

/// Creating an experiment or a sweep failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A `--set` argument without `=`.
    #[error("'{arg}' is not KEY=VALUE (for example train.seed=5)")]
    BadSetting { arg: String },
    /// A `--grid` argument without values.
    #[error("'{arg}' is not KEY=V1,V2,... (for example train.seed=1,2,3)")]
    BadGrid { arg: String },
    /// The same key given twice.
    #[error("key '{key}' is given more than once; give each key once")]
    DuplicateKey { key: String },
    /// Not a field of experiment.toml.
    #[error("unknown key '{key}'; valid keys: {valid}")]
    UnknownKey { key: String, valid: String },
    /// A value of the wrong type or out of range.
    #[error("invalid value '{value}' for {key}: expected {expected}")]
    BadValue { key: String, value: String, expected: String },
    /// The target id exists.
    #[error("experiment {id} already exists ({dir}); pick another id or delete that folder")]
    Exists { id: u32, dir: PathBuf },
    /// A sweep would overwrite existing experiments.
    #[error(
        "the sweep would overwrite existing experiments {ids:?} in {dir}; nothing was written (pick a --first-id with {count} free ids, e.g. {free})"
    )]
    WouldOverwrite { ids: Vec<u32>, dir: PathBuf, count: usize, free: u32 },
    /// Ids past u32::MAX.
    #[error("--first-id {first} + {count} experiments runs past the largest id {max}", max = u32::MAX)]
    IdOverflow { first: u32, count: usize },
    /// The source experiment is missing or invalid.
    #[error(transparent)]
    Source(#[from] RegistryError),
    /// The edited file does not parse as an experiment (a combination of values).
    #[error("the edited experiment {id} is not valid: {message}")]
    Invalid { id: u32, message: String },
    /// Writing failed (whatever this call had created was removed).
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// One `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Dotted key, e.g. `train.seed`.
    pub key: String,
    /// Value as typed (parsed against the key's type later).
    pub value: String,
}

impl FromStr for Setting {
    type Err = CreateError;
    fn from_str(arg: &str) -> Result<Self, CreateError> {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok(Setting { key: k.trim().to_string(), value: v.trim().to_string() })
            }
            _ => Err(CreateError::BadSetting { arg: arg.to_string() }),
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// One `--grid KEY=V1,V2,...` axis. Values are separated by commas outside brackets, or by
/// semicolons when any is present (for values that hold commas: `data.roi_set=V1v,V1d;set3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridAxis {
    /// Dotted key.
    pub key: String,
    /// Values in order.
    pub values: Vec<String>,
}

impl FromStr for GridAxis {
    type Err = CreateError;
    fn from_str(arg: &str) -> Result<Self, CreateError> {
        let bad = || CreateError::BadGrid { arg: arg.to_string() };
        let (key, list) = arg.split_once('=').ok_or_else(bad)?;
        let values: Vec<String> = if list.contains(';') {
            list.split(';').map(|v| v.trim().to_string()).collect()
        } else {
            split_top_level_commas(list)
        };
        if key.trim().is_empty() || values.iter().any(String::is_empty) {
            return Err(bad());
        }
        Ok(GridAxis { key: key.trim().to_string(), values })
    }
}

/// `a,[1, 2],b` -> `a`, `[1, 2]`, `b` (commas inside brackets belong to the value).
fn split_top_level_commas(list: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in list.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out
}

/// A source experiment ready to be copied with edits.
#[derive(Debug, Clone)]
pub struct Template {
    /// Source id.
    pub from: u32,
    /// The experiments folder.
    pub experiments_dir: PathBuf,
    /// The source file as written (only the keys it sets).
    written: Table,
    /// The source with every default filled in: the settable keys and their types.
    full: Table,
}

impl Template {
    /// Load experiment `from` of `experiments_dir`.
    pub fn load(experiments_dir: &Path, from: &str) -> Result<Self, CreateError> {
        let (dir, config) = find(experiments_dir, from)?;
        let path = dir.join(CONFIG_FILE);
        let io = |source| CreateError::Io { path: path.clone(), source };
        let text = std::fs::read_to_string(&path).map_err(io)?;
        // `find` parsed it already, so both conversions succeed.
        let written: Table = toml::from_str(&text)
            .map_err(|e| CreateError::Invalid { id: config.id, message: e.to_string() })?;
        let full = match Value::try_from(&config) {
            Ok(Value::Table(t)) => t,
            other => {
                return Err(CreateError::Invalid {
                    id: config.id,
                    message: format!("does not serialise to a table: {other:?}"),
                });
            }
        };
        Ok(Self { from: config.id, experiments_dir: experiments_dir.to_path_buf(), written, full })
    }

    /// Every settable dotted key (`description`, `data.root`, ..., `model.upsampler_channels`);
    /// `id` is not one (it is the new experiment's id).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for (k, v) in &self.full {
            match v {
                Value::Table(t) => keys.extend(t.keys().map(|f| format!("{k}.{f}"))),
                _ if k != "id" => keys.push(k.clone()),
                _ => {}
            }
        }
        keys
    }

    /// The configuration and file text of experiment `id`: the source with `settings` applied
    /// (each key known, each value of the key's type and in range).
    pub fn derive(
        &self,
        id: u32,
        settings: &[Setting],
        header: &str,
    ) -> Result<(ExperimentConfig, String), CreateError> {
        let mut doc = self.written.clone();
        let mut seen = Vec::new();
        for s in settings {
            if seen.contains(&s.key) {
                return Err(CreateError::DuplicateKey { key: s.key.clone() });
            }
            seen.push(s.key.clone());
            let value = self.typed_value(&s.key, &s.value)?;
            set_path(&mut doc, &s.key, value);
        }
        doc.insert("id".into(), Value::Integer(i64::from(id)));
        if !settings.iter().any(|s| s.key == "description") {
            let changes: Vec<String> = settings.iter().map(Setting::to_string).collect();
            let text = if changes.is_empty() {
                format!("copy of {}", self.from)
            } else {
                format!("from {}: {}", self.from, changes.join(", "))
            };
            doc.insert("description".into(), Value::String(text));
        }
        let body = toml::to_string(&doc)
            .map_err(|e| CreateError::Invalid { id, message: e.to_string() })?;
        let config: ExperimentConfig = toml::from_str(&body)
            .map_err(|e| CreateError::Invalid { id, message: e.to_string() })?;
        validate(&config)?;
        let mut text = String::new();
        for line in header.lines() {
            text.push_str("# ");
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&body);
        Ok((config, text))
    }

    /// `raw` converted to the type the source has at `key`.
    fn typed_value(&self, key: &str, raw: &str) -> Result<Value, CreateError> {
        let unknown =
            || CreateError::UnknownKey { key: key.to_string(), valid: self.keys().join(", ") };
        if key == "id" {
            return Err(unknown());
        }
        let current = match key.split_once('.') {
            Some((section, field)) => match self.full.get(section) {
                Some(Value::Table(t)) => t.get(field),
                _ => None,
            },
            None => self.full.get(key).filter(|v| !v.is_table()),
        }
        .ok_or_else(unknown)?;
        let bad = |expected: &str| CreateError::BadValue {
            key: key.to_string(),
            value: raw.to_string(),
            expected: expected.to_string(),
        };
        Ok(match current {
            Value::String(_) => {
                let unquoted = raw
                    .strip_prefix('"')
                    .and_then(|r| r.strip_suffix('"'))
                    .or_else(|| raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
                    .unwrap_or(raw);
                Value::String(unquoted.to_string())
            }
            Value::Integer(_) => match raw.parse::<i64>() {
                Ok(n) if n >= 0 => Value::Integer(n),
                _ => return Err(bad("a whole number >= 0")),
            },
            Value::Float(_) => match raw.parse::<f64>() {
                Ok(x) if x.is_finite() => Value::Float(x),
                _ => return Err(bad("a number (for example 5e-4)")),
            },
            Value::Boolean(_) => match raw {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => return Err(bad("true or false")),
            },
            Value::Array(_) => {
                let parsed: Result<Table, _> = toml::from_str(&format!("v = {raw}"));
                match parsed.ok().and_then(|mut t| t.remove("v")) {
                    Some(v @ Value::Array(_)) => v,
                    _ => return Err(bad("an array such as [32, 32, 32]")),
                }
            }
            _ => return Err(bad("a plain value")),
        })
    }
}

/// Set `key` (`section.field` or top-level) in `doc`, creating the section when missing.
fn set_path(doc: &mut Table, key: &str, value: Value) {
    match key.split_once('.') {
        Some((section, field)) => {
            let entry =
                doc.entry(section.to_string()).or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(t) = entry {
                t.insert(field.to_string(), value);
            }
        }
        None => {
            doc.insert(key.to_string(), value);
        }
    }
}

/// Range and vocabulary checks of an experiment configuration (what serde's types do not
/// catch), each naming the key and what it accepts.
pub fn validate(config: &ExperimentConfig) -> Result<(), CreateError> {
    let bad = |key: &str, value: String, expected: &str| {
        Err(CreateError::BadValue { key: key.into(), value, expected: expected.into() })
    };
    let d = &config.data;
    let known_rois: Vec<&str> =
        ROI_CLASSES.iter().flat_map(|(_, rois)| rois.iter().map(|(_, n)| *n)).collect();
    let roi_expected = format!(
        "set1, set2, set3, none, or a comma-separated list of ROI names from: {}",
        known_rois.join(", ")
    );
    match RoiSet::parse(&d.roi_set) {
        Ok(RoiSet::Custom(names)) => {
            if names.iter().any(|n| !known_rois.iter().any(|k| k.eq_ignore_ascii_case(n))) {
                return bad("data.roi_set", d.roi_set.clone(), &roi_expected);
            }
        }
        Ok(_) => {}
        Err(_) => return bad("data.roi_set", d.roi_set.clone(), &roi_expected),
    }
    if !["zero", "select"].contains(&d.mask_mode.to_ascii_lowercase().as_str()) {
        return bad(
            "data.mask_mode",
            d.mask_mode.clone(),
            "zero (keep width, zero outside the set) or select",
        );
    }
    if d.subject.trim().is_empty() {
        return bad("data.subject", d.subject.clone(), "a subject folder name such as subj01");
    }
    let t = &config.train;
    if crate::backend::parse_device_name(&t.device).is_err() {
        return bad("train.device", t.device.clone(), crate::backend::DEVICE_RULE);
    }
    if t.batch_size == 0 {
        return bad("train.batch_size", "0".into(), "a whole number >= 1");
    }
    if t.epochs == 0 {
        return bad("train.epochs", "0".into(), "a whole number >= 1");
    }
    if t.max_lr.is_nan() || t.max_lr <= 0.0 {
        return bad("train.max_lr", t.max_lr.to_string(), "a number > 0");
    }
    if t.weight_decay.is_nan() || t.weight_decay < 0.0 {
        return bad("train.weight_decay", t.weight_decay.to_string(), "a number >= 0");
    }
    if t.val_fraction.is_nan() || t.val_fraction <= 0.0 || t.val_fraction >= 1.0 {
        return bad("train.val_fraction", t.val_fraction.to_string(), "a number between 0 and 1");
    }
    let m = &config.model;
    if m.hidden == 0 {
        return bad("model.hidden", "0".into(), "a whole number >= 1");
    }
    if m.proj_channels == 0 {
        return bad("model.proj_channels", "0".into(), "a whole number >= 1");
    }
    for (key, p) in [("model.dropout_in", m.dropout_in), ("model.dropout_block", m.dropout_block)] {
        if !(0.0..1.0).contains(&p) {
            return bad(key, p.to_string(), "a probability in [0, 1)");
        }
    }
    if m.upsampler_channels.is_empty()
        || m.upsampler_channels.iter().any(|c| *c == 0 || !c.is_multiple_of(32))
    {
        return bad(
            "model.upsampler_channels",
            format!("{:?}", m.upsampler_channels),
            "a non-empty array of multiples of 32 (the upsampler's GroupNorm groups)",
        );
    }
    Ok(())
}

/// Write `experiments_dir/<id>/experiment.toml` atomically: a hidden temp folder with the file,
/// renamed into place. Refuses an existing id.
fn write_experiment(experiments_dir: &Path, id: u32, text: &str) -> Result<PathBuf, CreateError> {
    let target = experiments_dir.join(id.to_string());
    if target.exists() {
        return Err(CreateError::Exists { id, dir: target });
    }
    let tmp = experiments_dir.join(format!(".new-{id}-{}", std::process::id()));
    let result = (|| {
        std::fs::create_dir_all(&tmp)?;
        write_atomic(&tmp.join(CONFIG_FILE), text.as_bytes())?;
        // `exists` was checked above; a folder created in between by someone else would be an
        // empty one (rename replaces only an empty directory), so nothing is lost.
        std::fs::rename(&tmp, &target)
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_dir_all(&tmp);
        CreateError::Io { path: target.clone(), source }
    })?;
    Ok(target)
}

/// `brainscope new ID --from FROM --set ...`: create experiment `id` from `from` with edits.
/// Returns the new folder.
pub fn create(
    experiments_dir: &Path,
    from: &str,
    id: u32,
    settings: &[Setting],
) -> Result<PathBuf, CreateError> {
    let template = Template::load(experiments_dir, from)?;
    let target = experiments_dir.join(id.to_string());
    if target.exists() {
        return Err(CreateError::Exists { id, dir: target });
    }
    let changes: Vec<String> = settings.iter().map(Setting::to_string).collect();
    let header = format!(
        "Experiment {id}: created by `brainscope new {id} --from {}`{}{}.",
        template.from,
        if changes.is_empty() { "" } else { " with " },
        changes.join(", ")
    );
    let (_, text) = template.derive(id, settings, &header)?;
    write_experiment(experiments_dir, id, &text)
}

/// One experiment of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepMember {
    /// Its id.
    pub id: u32,
    /// The grid values it got, by key.
    pub set: BTreeMap<String, String>,
}

/// One `[[sweep]]` entry of `sweep.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    /// Source experiment id.
    pub from: u32,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Ids created, in grid order (the first axis varies slowest).
    pub ids: Vec<u32>,
    /// The axes as given.
    pub grid: Vec<GridAxis>,
    /// Per experiment, the values it got.
    pub members: Vec<SweepMember>,
}

/// `sweep.toml`: every sweep created in this experiments folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepFile {
    /// Oldest first.
    #[serde(default)]
    pub sweep: Vec<SweepRecord>,
}

/// Read `experiments_dir/sweep.toml` (empty when absent).
pub fn read_sweeps(experiments_dir: &Path) -> Result<SweepFile, CreateError> {
    let path = experiments_dir.join(SWEEP_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| CreateError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SweepFile::default()),
        Err(source) => Err(CreateError::Io { path, source }),
    }
}

/// Every combination of the axes' values, first axis slowest.
pub fn combinations(axes: &[GridAxis]) -> Vec<Vec<Setting>> {
    let mut out: Vec<Vec<Setting>> = vec![Vec::new()];
    for axis in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(Setting { key: axis.key.clone(), value: v.clone() });
                    next
                })
            })
            .collect();
    }
    out
}

/// `brainscope sweep --from FROM --grid ... --first-id N`: one experiment per combination with
/// ids `N, N+1, ...`, appended to `sweep.toml`. Every combination is validated and every id
/// checked before anything is written; a write failure removes what this call created.
pub fn sweep(
    experiments_dir: &Path,
    from: &str,
    axes: &[GridAxis],
    first_id: u32,
) -> Result<SweepRecord, CreateError> {
    let template = Template::load(experiments_dir, from)?;
    let mut keys = Vec::new();
    for axis in axes {
        if keys.contains(&axis.key) {
            return Err(CreateError::DuplicateKey { key: axis.key.clone() });
        }
        keys.push(axis.key.clone());
    }
    let combos = combinations(axes);
    let count = combos.len();
    let last = u32::try_from(count - 1)
        .ok()
        .and_then(|n| first_id.checked_add(n))
        .ok_or(CreateError::IdOverflow { first: first_id, count })?;
    let ids: Vec<u32> = (first_id..=last).collect();
    let taken: Vec<u32> =
        ids.iter().copied().filter(|id| experiments_dir.join(id.to_string()).exists()).collect();
    if !taken.is_empty() {
        return Err(CreateError::WouldOverwrite {
            ids: taken,
            dir: experiments_dir.to_path_buf(),
            count,
            free: first_free_run(experiments_dir, first_id, count),
        });
    }
    // Validate every combination before writing any.
    let mut texts = Vec::with_capacity(count);
    for (id, settings) in ids.iter().zip(&combos) {
        let changes: Vec<String> = settings.iter().map(Setting::to_string).collect();
        let header = format!(
            "Experiment {id}: created by `brainscope sweep --from {} --first-id {first_id}` with {}.\nListed in {SWEEP_FILE}.",
            template.from,
            changes.join(", ")
        );
        texts.push(template.derive(*id, settings, &header)?.1);
    }
    let record = SweepRecord {
        from: template.from,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ids: ids.clone(),
        grid: axes.to_vec(),
        members: ids
            .iter()
            .zip(&combos)
            .map(|(id, s)| SweepMember {
                id: *id,
                set: s.iter().map(|s| (s.key.clone(), s.value.clone())).collect(),
            })
            .collect(),
    };
    let mut file = read_sweeps(experiments_dir)?;
    file.sweep.push(record.clone());
    let sweep_text = toml::to_string(&file).map_err(|e| CreateError::Io {
        path: experiments_dir.join(SWEEP_FILE),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut created = Vec::new();
    let result = (|| {
        for (id, text) in ids.iter().zip(&texts) {
            created.push(write_experiment(experiments_dir, *id, text)?);
        }
        let header = "# Sweeps created by `brainscope sweep` (oldest first). Submit one with\n\
                      # `brainscope submit ID... --array`.\n";
        let path = experiments_dir.join(SWEEP_FILE);
        write_atomic(&path, format!("{header}{sweep_text}").as_bytes())
            .map_err(|source| CreateError::Io { path, source })
    })();
    if let Err(e) = result {
        for dir in created {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Err(e);
    }
    Ok(record)
}

/// The first id `>= from` that starts `count` free ids.
fn first_free_run(experiments_dir: &Path, from: u32, count: usize) -> u32 {
    let mut start = from;
    'search: while let Some(end) = start.checked_add(count as u32) {
        // `start` moves past a taken id and the search restarts (`continue 'search`).
        #[allow(clippy::mut_range_bound)]
        for id in start..end {
            if experiments_dir.join(id.to_string()).exists() {
                start = id + 1;
                continue 'search;
            }
        }
        return start;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_values_split_on_top_level_commas_or_semicolons() {
        let a: GridAxis = "train.seed=1, 2,3".parse().unwrap();
        assert_eq!(a.values, ["1", "2", "3"]);
        let a: GridAxis = "model.upsampler_channels=[32, 32],[64,64]".parse().unwrap();
        assert_eq!(a.values, ["[32, 32]", "[64,64]"]);
        let a: GridAxis = "data.roi_set=V1v,V1d;set3".parse().unwrap();
        assert_eq!(a.values, ["V1v,V1d", "set3"]);
        assert!("train.seed".parse::<GridAxis>().is_err());
        assert!("train.seed=1,,2".parse::<GridAxis>().is_err());
        assert!("=1".parse::<Setting>().is_err());
    }

    #[test]
    fn combinations_vary_the_first_axis_slowest() {
        let axes: Vec<GridAxis> = vec!["a=1,2".parse().unwrap(), "b=x,y,z".parse().unwrap()];
        let c = combinations(&axes);
        assert_eq!(c.len(), 6);
        let flat: Vec<String> = c
            .iter()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(flat[0], "a=1 b=x");
        assert_eq!(flat[2], "a=1 b=z");
        assert_eq!(flat[3], "a=2 b=x");
    }
}
