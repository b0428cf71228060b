//! BLIP's tokenizer (transformers `BertTokenizer(Fast)` of bert-base-uncased with `[DEC]` as bos and
//! `[ENC]` added) on the `tokenizers` crate: from `tokenizer.json`, or from `vocab.txt` alone by
//! assembling the pipeline transformers builds from it: `BertNormalizer` (clean text, Chinese
//! characters split, lowercase, accents stripped), `BertPreTokenizer`, WordPiece (`##`, `[UNK]`,
//! 100 characters per word), the `[CLS] ... [SEP]` post-processor and the WordPiece decoder.
//! `[DEC]` and `[ENC]` are appended as special tokens (30522, 30523) when the file lacks them.

use std::path::{Path, PathBuf};

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

/// Where real tokenizer files come from (quoted in errors).
pub const TOKENIZER_SOURCES: &str =
    "Salesforce/blip-image-captioning-large (tokenizer.json or vocab.txt) on huggingface.co";

/// BERT's special tokens, then BLIP's two additions (in the order that gives 30522, 30523).
const SPECIALS: [&str; 7] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]"];

/// Errors of loading or running the tokenizer. Each names the file or folder and the fix.
#[derive(Debug, thiserror::Error)]
pub enum BlipTokenizerError {
    /// Neither tokenizer.json nor vocab.txt is there.
    #[error(
        "{dir}: no BLIP tokenizer; expected tokenizer.json or vocab.txt (BERT uncased) in that folder. Get them from {TOKENIZER_SOURCES}"
    )]
    Missing {
        /// The folder searched.
        dir: PathBuf,
    },
    /// The file cannot be read or parsed.
    #[error("{path}: cannot load the BLIP tokenizer; get the files from {TOKENIZER_SOURCES}")]
    Load {
        /// The file.
        path: PathBuf,
        /// The tokenizers crate's error.
        #[source]
        source: tokenizers::Error,
    },
    /// A token BLIP needs has another id than the model's config says.
    #[error(
        "{path}: the tokenizer gives {token} the id {got:?}, the model's config.json expects {want}; the tokenizer must be the one of the model folder (BERT uncased + [DEC] + [ENC])"
    )]
    WrongId {
        /// The tokenizer file.
        path: PathBuf,
        /// The token.
        token: &'static str,
        /// Its id in the tokenizer.
        got: Option<u32>,
        /// The id the config expects.
        want: u32,
    },
    /// Tokenising or decoding failed.
    #[error("cannot tokenize {text:?}")]
    Encode {
        /// The text (or the ids, for decoding).
        text: String,
        /// The tokenizers crate's error.
        #[source]
        source: tokenizers::Error,
    },
}

/// The BERT uncased WordPiece tokenizer of a BLIP folder.
#[derive(Debug, Clone)]
pub struct BlipTokenizer {
    inner: Tokenizer,
    path: PathBuf,
}

impl BlipTokenizer {
    /// Load from a folder: `tokenizer.json` if present, else `vocab.txt`.
    pub fn from_dir(dir: &Path) -> Result<Self, BlipTokenizerError> {
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            return Self::from_tokenizer_json(&json);
        }
        let vocab = dir.join("vocab.txt");
        if vocab.is_file() {
            return Self::from_vocab_txt(&vocab);
        }
        Err(BlipTokenizerError::Missing { dir: dir.into() })
    }

    /// Load a `tokenizer.json` (as BertTokenizerFast saves it).
    pub fn from_tokenizer_json(path: &Path) -> Result<Self, BlipTokenizerError> {
        let mut inner = Tokenizer::from_file(path)
            .map_err(|source| BlipTokenizerError::Load { path: path.into(), source })?;
        add_specials(&mut inner);
        Ok(Self { inner, path: path.into() })
    }

    /// Build transformers' BERT pipeline around the WordPiece vocabulary of `vocab.txt`.
    pub fn from_vocab_txt(path: &Path) -> Result<Self, BlipTokenizerError> {
        let load = |source| BlipTokenizerError::Load { path: path.into(), source };
        let wordpiece = WordPiece::from_file(&path.to_string_lossy())
            .unk_token("[UNK]".into())
            .continuing_subword_prefix("##".into())
            .max_input_chars_per_word(100)
            .build()
            .map_err(load)?;
        let mut inner = Tokenizer::new(wordpiece);
        inner.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_decoder(Some(WordPieceDecoder::new("##".into(), true)));
        let id = |t: &str| inner.token_to_id(t);
        let (Some(cls), Some(sep)) = (id("[CLS]"), id("[SEP]")) else {
            return Err(BlipTokenizerError::WrongId {
                path: path.into(),
                token: "[CLS]/[SEP]",
                got: None,
                want: 101,
            });
        };
        inner.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
        add_specials(&mut inner);
        Ok(Self { inner, path: path.into() })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of a token (e.g. `[DEC]`), if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Check that `token` has the id `want` (the config's bos / sep).
    pub fn check_id(&self, token: &'static str, want: u32) -> Result<(), BlipTokenizerError> {
        let got = self.token_to_id(token);
        if got == Some(want) {
            Ok(())
        } else {
            Err(BlipTokenizerError::WrongId { path: self.path.clone(), token, got, want })
        }
    }

    /// `[CLS]` + the text's WordPiece ids + `[SEP]` (transformers' `tokenizer(text).input_ids`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, BlipTokenizerError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|source| BlipTokenizerError::Encode { text: text.into(), source })?;
        Ok(enc.get_ids().to_vec())
    }

    /// transformers' `decode(ids, skip_special_tokens=True)`.
    pub fn decode(&self, ids: &[u32]) -> Result<String, BlipTokenizerError> {
        self.inner
            .decode(ids, true)
            .map_err(|source| BlipTokenizerError::Encode { text: format!("{ids:?}"), source })
    }
}

/// Mark BERT's tokens special and append `[DEC]`, `[ENC]` when missing (no-op for tokens the
/// tokenizer already knows as special).
fn add_specials(inner: &mut Tokenizer) {
    let tokens: Vec<AddedToken> = SPECIALS.iter().map(|t| AddedToken::from(*t, true)).collect();
    inner.add_special_tokens(&tokens);
}
