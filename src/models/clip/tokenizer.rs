//! CLIP's tokenizer on the `tokenizers` crate, matching transformers' `CLIPTokenizer`: from a
//! `tokenizer.json`, or from `vocab.json` + `merges.txt` alone (SD v1.5's `tokenizer/` folder has
//! no tokenizer.json) by assembling the same pipeline transformers builds from those two files:
//! normaliser NFC + whitespace collapse + lowercase, CLIP's split regex, byte-level BPE with the
//! `</w>` end-of-word suffix, and bos/eos added around the text. Sequences are truncated to
//! `max_length` (77) including bos/eos and padded with the pad token (eos in OpenAI's CLIP).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use serde_json::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, NFC, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer, TruncationParams};

/// CLIP's pre-tokenizer split (transformers `CLIPTokenizer`): special tokens, English
/// contractions, letter runs, single digits, and runs of other non-space characters.
pub const CLIP_SPLIT_REGEX: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// Where real tokenizer files come from (quoted in errors).
pub const TOKENIZER_SOURCES: &str = "openai/clip-vit-large-patch14 (tokenizer.json, vocab.json, merges.txt) or the `tokenizer/` folder of runwayml/stable-diffusion-v1-5 on huggingface.co";

/// Errors of loading or running the tokenizer. Each names the file or folder and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Neither tokenizer.json nor vocab.json + merges.txt is there.
    #[error(
        "{dir}: no CLIP tokenizer; expected tokenizer.json, or vocab.json + merges.txt, in that folder or a sibling `tokenizer/` folder. Get them from {TOKENIZER_SOURCES}"
    )]
    Missing {
        /// The folder searched.
        dir: PathBuf,
    },
    /// The tokenizer files cannot be read or parsed.
    #[error("{path}: cannot load the CLIP tokenizer; get the files from {TOKENIZER_SOURCES}")]
    Load {
        /// The file.
        path: PathBuf,
        /// The tokenizers crate's error.
        #[source]
        source: tokenizers::Error,
    },
    /// `tokenizer_config.json` / `special_tokens_map.json` cannot be parsed.
    #[error("{path}: cannot parse the tokenizer settings")]
    Settings {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A special token is not in the vocabulary.
    #[error(
        "{path}: the vocabulary has no {role} token '{token}'; expected OpenAI's CLIP BPE vocabulary"
    )]
    MissingToken {
        /// The vocabulary file.
        path: PathBuf,
        /// `bos`, `eos` or `pad`.
        role: &'static str,
        /// The token's text.
        token: String,
    },
    /// Tokenising a text failed.
    #[error("cannot tokenize {text:?}")]
    Encode {
        /// The text.
        text: String,
        /// The tokenizers crate's error.
        #[source]
        source: tokenizers::Error,
    },
}

/// One tokenised text: unpadded ids (bos .. eos) and its padded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipTokens {
    /// bos, the text's tokens (truncated), eos.
    pub ids: Vec<u32>,
    /// `ids` padded with the pad id to `max_length`.
    pub padded: Vec<u32>,
    /// 1 for tokens of `ids`, 0 for padding (`max_length` values).
    pub attention_mask: Vec<u32>,
}

/// transformers' `CLIPTokenizer`.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    max_length: usize,
    /// Id of `<|startoftext|>`.
    pub bos_id: u32,
    /// Id of `<|endoftext|>`.
    pub eos_id: u32,
    /// Id of the padding token (eos in OpenAI's CLIP; `!` in some LAION configs).
    pub pad_id: u32,
}

/// The special tokens of a folder (`tokenizer_config.json` / `special_tokens_map.json`, else
/// CLIP's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Begin of text.
    pub bos: String,
    /// End of text (also the unknown token).
    pub eos: String,
    /// Padding.
    pub pad: String,
}

impl Default for SpecialTokens {
    fn default() -> Self {
        Self {
            bos: "<|startoftext|>".into(),
            eos: "<|endoftext|>".into(),
            pad: "<|endoftext|>".into(),
        }
    }
}

impl SpecialTokens {
    /// Read the special tokens of `dir`: `special_tokens_map.json`, then `tokenizer_config.json`
    /// (a token is a string or `{"content": ...}`), else the defaults.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let mut tokens = Self::default();
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            let path = dir.join(name);
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let v: Value = serde_json::from_str(&text)
                .map_err(|source| TokenizerError::Settings { path: path.clone(), source })?;
            let get = |key: &str| -> Option<String> {
                match v.get(key)? {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
                    _ => None,
                }
            };
            if let Some(t) = get("bos_token") {
                tokens.bos = t;
            }
            if let Some(t) = get("eos_token") {
                tokens.eos = t;
            }
            if let Some(t) = get("pad_token") {
                tokens.pad = t;
            }
        }
        Ok(tokens)
    }
}

/// The folder holding the tokenizer for the model folder `dir`: `dir` itself when it has
/// tokenizer files, else the sibling `../tokenizer` (the SD layout, `text_encoder/` beside
/// `tokenizer/`), else `dir/tokenizer`.
pub fn find_tokenizer_dir(dir: &Path) -> Result<PathBuf, TokenizerError> {
    let has = |d: &Path| {
        d.join("tokenizer.json").is_file()
            || (d.join("vocab.json").is_file() && d.join("merges.txt").is_file())
    };
    let candidates = [dir.to_path_buf(), dir.join("..").join("tokenizer"), dir.join("tokenizer")];
    candidates
        .into_iter()
        .find(|d| has(d))
        .ok_or_else(|| TokenizerError::Missing { dir: dir.into() })
}

impl ClipTokenizer {
    /// Load from a folder: `tokenizer.json` if present, else `vocab.json` + `merges.txt`, with the
    /// special tokens of [`SpecialTokens::from_dir`].
    pub fn from_dir(dir: &Path, max_length: usize) -> Result<Self, TokenizerError> {
        let special = SpecialTokens::from_dir(dir)?;
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            return Self::from_tokenizer_json(&json, max_length, &special);
        }
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        if vocab.is_file() && merges.is_file() {
            return Self::from_vocab_merges(&vocab, &merges, max_length, &special);
        }
        Err(TokenizerError::Missing { dir: dir.into() })
    }

    /// Load a `tokenizer.json` (as `CLIPTokenizer.save_pretrained` writes it).
    pub fn from_tokenizer_json(
        path: &Path,
        max_length: usize,
        special: &SpecialTokens,
    ) -> Result<Self, TokenizerError> {
        let inner = Tokenizer::from_file(path)
            .map_err(|source| TokenizerError::Load { path: path.into(), source })?;
        Self::finish(inner, path, max_length, special)
    }

    /// Build transformers' CLIP pipeline around the BPE of `vocab.json` + `merges.txt`.
    pub fn from_vocab_merges(
        vocab: &Path,
        merges: &Path,
        max_length: usize,
        special: &SpecialTokens,
    ) -> Result<Self, TokenizerError> {
        let load = |source| TokenizerError::Load { path: vocab.into(), source };
        let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
            .unk_token(special.eos.clone())
            .continuing_subword_prefix(String::new())
            .end_of_word_suffix("</w>".into())
            .fuse_unk(false)
            .build()
            .map_err(load)?;
        let mut inner = Tokenizer::new(bpe);
        let whitespace = Replace::new(ReplacePattern::Regex(r"\s+".into()), " ").map_err(load)?;
        inner.with_normalizer(Some(NormalizerSequence::new(vec![
            NFC.into(),
            whitespace.into(),
            Lowercase.into(),
        ])));
        let split = Split::new(
            SplitPattern::Regex(CLIP_SPLIT_REGEX.into()),
            SplitDelimiterBehavior::Removed,
            true,
        )
        .map_err(load)?;
        // Python's `ByteLevel(add_prefix_space=False)`: trim_offsets and use_regex default true.
        inner.with_pre_tokenizer(Some(PreTokenizerSequence::new(vec![
            split.into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let id = |role: &'static str, token: &str| {
            inner.token_to_id(token).ok_or_else(|| TokenizerError::MissingToken {
                path: vocab.into(),
                role,
                token: token.into(),
            })
        };
        let (bos_id, eos_id) = (id("bos", &special.bos)?, id("eos", &special.eos)?);
        inner.with_post_processor(Some(
            RobertaProcessing::new((special.eos.clone(), eos_id), (special.bos.clone(), bos_id))
                .trim_offsets(false)
                .add_prefix_space(false),
        ));
        let mut added = vec![
            AddedToken::from(special.bos.clone(), true),
            AddedToken::from(special.eos.clone(), true),
        ];
        if special.pad != special.eos {
            added.push(AddedToken::from(special.pad.clone(), true));
        }
        inner.add_special_tokens(&added);
        Self::finish(inner, vocab, max_length, special)
    }

    fn finish(
        mut inner: Tokenizer,
        path: &Path,
        max_length: usize,
        special: &SpecialTokens,
    ) -> Result<Self, TokenizerError> {
        let id = |role: &'static str, token: &str| {
            inner.token_to_id(token).ok_or_else(|| TokenizerError::MissingToken {
                path: path.into(),
                role,
                token: token.into(),
            })
        };
        let (bos_id, eos_id, pad_id) =
            (id("bos", &special.bos)?, id("eos", &special.eos)?, id("pad", &special.pad)?);
        // No padding in the crate (this type pads, keeping the unpadded ids too); truncation
        // counts the bos/eos the post-processor adds, as transformers' `truncation=True`.
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|source| TokenizerError::Load { path: path.into(), source })?;
        Ok(Self { inner, max_length, bos_id, eos_id, pad_id })
    }

    /// The sequence length every text is padded to (77 for CLIP).
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Tokenise one text: bos + tokens + eos (truncated to `max_length`), and its padded form.
    pub fn encode(&self, text: &str) -> Result<ClipTokens, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|source| TokenizerError::Encode { text: text.into(), source })?;
        let ids = encoding.get_ids().to_vec();
        let mut padded = ids.clone();
        padded.resize(self.max_length.max(ids.len()), self.pad_id);
        let mut attention_mask = vec![1u32; ids.len()];
        attention_mask.resize(padded.len(), 0);
        Ok(ClipTokens { ids, padded, attention_mask })
    }

    /// Tokenise several texts into padded `input_ids` and `attention_mask`, both
    /// `[texts, max_length]`, plus each text's unpadded ids.
    pub fn encode_batch(
        &self,
        texts: &[String],
        device: &Device,
    ) -> Result<(Tensor<2, Int>, Tensor<2, Int>, Vec<Vec<u32>>), TokenizerError> {
        let encoded: Vec<ClipTokens> =
            texts.iter().map(|t| self.encode(t)).collect::<Result<_, _>>()?;
        let n = encoded.len();
        let seq = self.max_length;
        let ids: Vec<i64> =
            encoded.iter().flat_map(|e| e.padded.iter().map(|&i| i as i64)).collect();
        let mask: Vec<i64> =
            encoded.iter().flat_map(|e| e.attention_mask.iter().map(|&i| i as i64)).collect();
        let ids = Tensor::from_data(TensorData::new(ids, [n, seq]), device); // [n, 77]
        let mask = Tensor::from_data(TensorData::new(mask, [n, seq]), device); // [n, 77]
        Ok((ids, mask, encoded.into_iter().map(|e| e.ids).collect()))
    }
}
