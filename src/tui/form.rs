//! `n` in the console: clone the selected experiment through an edit form of the common fields
//! (new id, ROI set, mask mode, seed, batch, epochs, max lr). Saving goes through
//! [`experiments::create::create`](crate::experiments::create::create), the code behind
//! `brainscope new ID --from SRC --set KEY=VALUE`: the same validation, the same file, the same
//! refusal of an existing id. Only the fields that differ from the source are set. An invalid
//! value keeps the form open with the error (which names the valid values); Esc writes nothing.

use crate::experiments::config::ExperimentConfig;
use crate::experiments::create::{self, CreateError, Setting};
use std::path::{Path, PathBuf};

/// One field of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Label shown.
    pub label: &'static str,
    /// Dotted experiment.toml key (`None`: the new id).
    pub key: Option<&'static str>,
    /// The source's value (a field left at it is not set).
    pub original: String,
    /// The value being edited.
    pub value: String,
}

/// The clone form of one source experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneForm {
    /// Source experiment id.
    pub from: String,
    /// Fields, the new id first.
    pub fields: Vec<Field>,
    /// Field being edited.
    pub focus: usize,
    /// Why the last save was refused (the library's message).
    pub error: Option<String>,
}

/// The keys the form edits, with their labels.
pub const FIELDS: [(&str, &str); 6] = [
    ("ROI set", "data.roi_set"),
    ("mask mode", "data.mask_mode"),
    ("seed", "train.seed"),
    ("batch size", "train.batch_size"),
    ("epochs", "train.epochs"),
    ("max lr", "train.max_lr"),
];

impl CloneForm {
    /// A form cloning `from` (its configuration `config`), proposing the next free id of
    /// `experiments_dir`.
    pub fn new(experiments_dir: &Path, from: &str, config: &ExperimentConfig) -> Self {
        let values = [
            config.data.roi_set.clone(),
            config.data.mask_mode.clone(),
            config.train.seed.to_string(),
            config.train.batch_size.to_string(),
            config.train.epochs.to_string(),
            format!("{:e}", config.train.max_lr),
        ];
        let id = next_free_id(experiments_dir, config.id).to_string();
        let mut fields =
            vec![Field { label: "new id", key: None, original: String::new(), value: id }];
        for ((label, key), v) in FIELDS.iter().zip(values) {
            fields.push(Field { label, key: Some(key), original: v.clone(), value: v });
        }
        Self { from: from.to_string(), fields, focus: 0, error: None }
    }

    /// Type a character into the focused field.
    pub fn push(&mut self, c: char) {
        self.fields[self.focus].value.push(c);
        self.error = None;
    }

    /// Delete the last character of the focused field.
    pub fn backspace(&mut self) {
        self.fields[self.focus].value.pop();
        self.error = None;
    }

    /// Focus the next (`forward`) or previous field, wrapping.
    pub fn move_focus(&mut self, forward: bool) {
        let n = self.fields.len();
        self.focus = if forward { (self.focus + 1) % n } else { (self.focus + n - 1) % n };
    }

    /// The `--set` settings of the fields that differ from the source.
    pub fn settings(&self) -> Vec<Setting> {
        self.fields
            .iter()
            .filter_map(|f| {
                let key = f.key?;
                (f.value.trim() != f.original)
                    .then(|| Setting { key: key.into(), value: f.value.trim().into() })
            })
            .collect()
    }

    /// Create the experiment (as `brainscope new`); the new folder, or the error shown in the
    /// form (nothing written then).
    pub fn save(&mut self, experiments_dir: &Path) -> Result<PathBuf, String> {
        let id_text = self.fields[0].value.trim();
        let result = match id_text.parse::<u32>() {
            Ok(id) => create::create(experiments_dir, &self.from, id, &self.settings())
                .map_err(|e| describe(&e)),
            Err(_) => Err(format!("new id '{id_text}' is not a number (0 to {})", u32::MAX)),
        };
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }
}

/// The error and its causes on one line.
fn describe(e: &CreateError) -> String {
    crate::errors::chain(e).replace('\n', " · ")
}

/// The smallest id above `after` (else above the largest numeric id) with no folder.
pub fn next_free_id(experiments_dir: &Path, after: u32) -> u32 {
    let taken = |id: u32| experiments_dir.join(id.to_string()).exists();
    let mut id = after.saturating_add(1);
    while taken(id) && id < u32::MAX {
        id += 1;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_free_id_skips_taken_folders() {
        let dir = tempfile::tempdir().unwrap();
        for id in [92, 93, 95] {
            std::fs::create_dir(dir.path().join(id.to_string())).unwrap();
        }
        assert_eq!(next_free_id(dir.path(), 92), 94);
        assert_eq!(next_free_id(dir.path(), 95), 96);
    }
}
