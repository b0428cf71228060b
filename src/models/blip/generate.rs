//! Caption generation exactly as transformers' `generate` does it for
//! `BlipForConditionalGeneration`: the prompt is `[DEC]` (the bos replacing `[CLS]`) plus an
//! optional tokenised prefix, decoding stops on `[SEP]` or at `max_length` (which counts the
//! prompt), with `min_length` (bans `[SEP]` before it) and `repetition_penalty` logits processors
//! (in that order), greedy search, or beam search following transformers' vectorised beam search
//! (`_beam_search`: `2 * num_beams` candidates per step, finished hypotheses merged by
//! length-penalised score, `early_stopping` true / false / "never" and its heuristic, f32 scores
//! with the same -1e9 masking arithmetic).
//!
//! The decoder runs with a [`KvCache`]: the prompt once, then one token per sequence and step;
//! beams reorder the self-attention caches by their source beam.

use burn::prelude::*;
use burn::tensor::TensorData;

use super::text::{BlipTextLmHeadModel, KvCache};

/// transformers' `early_stopping` of beam search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// `False` (the default): stop when the heuristic says no running beam can beat the finished.
    #[default]
    Heuristic,
    /// `True`: stop as soon as `num_beams` hypotheses are finished.
    Stop,
    /// `"never"`: the canonical beam search (with a positive length penalty, assume `max_length`).
    Never,
}

/// Decoding settings (transformers' `GenerationConfig` fields that apply).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Longest sequence, prompt included (transformers' `max_length`).
    pub max_length: usize,
    /// Shortest sequence, prompt included: `[SEP]` is banned before it (`min_length`).
    pub min_length: usize,
    /// 1 = greedy search.
    pub num_beams: usize,
    /// CTRL's repetition penalty (1 = none).
    pub repetition_penalty: f32,
    /// Beam score = sum of log-probabilities / generated_length ^ length_penalty.
    pub length_penalty: f32,
    /// Beam search's stopping rule.
    pub early_stopping: EarlyStopping,
}

impl Default for GenerateOptions {
    /// transformers' defaults with BLIP's `max_length` 20 counted with the bos (as the paper's
    /// transformers version generated with no arguments).
    fn default() -> Self {
        Self {
            max_length: 20,
            min_length: 0,
            num_beams: 1,
            repetition_penalty: 1.0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
        }
    }
}

/// Token ids the decoding needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    /// `[DEC]`, the first token.
    pub bos: u32,
    /// `[SEP]`, the end.
    pub sep: u32,
}

/// Errors of the decoding settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// `num_beams` is 0.
    #[error("the number of beams must be at least 1 (1 = greedy search)")]
    ZeroBeams,
    /// The prompt leaves no room to generate.
    #[error(
        "the prompt is {prompt} tokens ([DEC] + prefix) but max_length is {max_length}; shorten the prefix or raise the maximum length"
    )]
    PromptTooLong {
        /// Prompt length.
        prompt: usize,
        /// The maximum length.
        max_length: usize,
    },
    /// `max_length` is beyond the decoder's positions.
    #[error(
        "max_length {max_length} exceeds the decoder's {positions} positions (text_config.max_position_embeddings); lower it"
    )]
    TooLong {
        /// The maximum length.
        max_length: usize,
        /// `max_position_embeddings`.
        positions: usize,
    },
}

const NEG: f32 = -1.0e9;

fn ids_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let s = rows.first().map_or(0, Vec::len);
    let data: Vec<i64> = rows.iter().flat_map(|r| r.iter().map(|&t| t as i64)).collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), s]), device)
}

/// One decoder step: run `input` (new tokens per row) and return the last position's logits,
/// `rows` vectors of `vocab` values.
fn step_logits(
    decoder: &BlipTextLmHeadModel,
    input: &[Vec<u32>],
    cache: &mut KvCache,
    device: &Device,
) -> Vec<Vec<f32>> {
    let hidden = decoder.forward_hidden(ids_tensor(input, device), cache); // [rows, s, hidden]
    let [rows, s, _] = hidden.dims();
    let logits = decoder.logits(hidden.narrow(1, s - 1, 1)); // [rows, 1, vocab]
    let vocab = logits.dims()[2];
    let values: Vec<f32> =
        logits.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 logits");
    debug_assert_eq!(values.len(), rows * vocab);
    values.chunks(vocab).map(<[f32]>::to_vec).collect()
}

/// transformers' `RepetitionPenaltyLogitsProcessor` then `MinLengthLogitsProcessor` on one row of
/// scores, for the sequence `seq` so far.
fn process(scores: &mut [f32], seq: &[u32], opts: &GenerateOptions, sep: u32) {
    if opts.repetition_penalty != 1.0 {
        let p = opts.repetition_penalty;
        let mut seen = std::collections::HashSet::new();
        for &t in seq {
            if seen.insert(t) {
                let s = &mut scores[t as usize];
                *s = if *s < 0.0 { *s * p } else { *s / p };
            }
        }
    }
    if seq.len() < opts.min_length {
        scores[sep as usize] = f32::NEG_INFINITY;
    }
}

/// `log_softmax` of one row in f32 (as torch: `x - max - log(sum(exp(x - max)))`).
fn log_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    for x in row.iter_mut() {
        *x = *x - max - log_sum;
    }
}

/// Indices of the `k` largest values, largest first (ties: lower index first).
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let cmp = |a: &usize, b: &usize| values[*b].total_cmp(&values[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..values.len()).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k, cmp);
        idx.truncate(k);
    }
    idx.sort_by(cmp);
    idx
}

/// Check the settings against a prompt of `prompt_len` tokens and a decoder of `positions`.
pub fn check_options(
    opts: &GenerateOptions,
    prompt_len: usize,
    positions: usize,
) -> Result<(), GenerateError> {
    if opts.num_beams == 0 {
        return Err(GenerateError::ZeroBeams);
    }
    if prompt_len >= opts.max_length {
        return Err(GenerateError::PromptTooLong {
            prompt: prompt_len,
            max_length: opts.max_length,
        });
    }
    if opts.max_length > positions {
        return Err(GenerateError::TooLong { max_length: opts.max_length, positions });
    }
    Ok(())
}

/// Generate one caption per image of `image_embeds` `[images, tokens, width]` from `prompt`
/// (`[DEC]` first). Returns each image's ids as transformers' `generate` returns them for that
/// image: the prompt, the generated tokens, `[SEP]` when it ended there.
pub fn generate(
    decoder: &BlipTextLmHeadModel,
    image_embeds: Tensor<3>,
    prompt: &[u32],
    opts: &GenerateOptions,
    ids: SpecialIds,
) -> Result<Vec<Vec<u32>>, GenerateError> {
    let positions = decoder.bert.embeddings.position_embeddings.weight.dims()[0];
    check_options(opts, prompt.len(), positions)?;
    if opts.num_beams == 1 {
        Ok(greedy(decoder, image_embeds, prompt, opts, ids))
    } else {
        Ok(beam_search(decoder, image_embeds, prompt, opts, ids))
    }
}

fn greedy(
    decoder: &BlipTextLmHeadModel,
    image_embeds: Tensor<3>,
    prompt: &[u32],
    opts: &GenerateOptions,
    ids: SpecialIds,
) -> Vec<Vec<u32>> {
    let device = image_embeds.device();
    let n = image_embeds.dims()[0];
    let mut cache = decoder.new_cache(image_embeds);
    let mut seqs = vec![prompt.to_vec(); n];
    let mut done = vec![false; n];
    let mut input = seqs.clone();
    loop {
        let logits = step_logits(decoder, &input, &mut cache, &device);
        for (row, mut scores) in logits.into_iter().enumerate() {
            if done[row] {
                input[row] = vec![ids.sep]; // any token: the row is finished
                continue;
            }
            process(&mut scores, &seqs[row], opts, ids.sep);
            // torch.argmax: the first maximum.
            let mut best = 0;
            for (t, &s) in scores.iter().enumerate() {
                if s > scores[best] {
                    best = t;
                }
            }
            let token = best as u32;
            seqs[row].push(token);
            input[row] = vec![token];
            done[row] = token == ids.sep || seqs[row].len() >= opts.max_length;
        }
        if done.iter().all(|&d| d) {
            return seqs;
        }
    }
}

/// One image's beam-search state (transformers' per-batch-item tensors).
struct Beams {
    running: Vec<Vec<u32>>,
    running_scores: Vec<f32>,
    finished: Vec<Vec<u32>>,
    finished_scores: Vec<f32>,
    is_finished: Vec<bool>,
    improvable: bool,
}

fn beam_search(
    decoder: &BlipTextLmHeadModel,
    image_embeds: Tensor<3>,
    prompt: &[u32],
    opts: &GenerateOptions,
    ids: SpecialIds,
) -> Vec<Vec<u32>> {
    let device = image_embeds.device();
    let n = image_embeds.dims()[0];
    let nb = opts.num_beams;
    let keep = 2 * nb; // max(2, 1 + one eos token) * num_beams
    let prompt_len = prompt.len();
    let lp = opts.length_penalty as f64;
    let mut cache = decoder.new_cache(image_embeds);
    let expand: Vec<usize> = (0..n * nb).map(|r| r / nb).collect();
    cache.select_rows(&expand);
    let mut state: Vec<Beams> = (0..n)
        .map(|_| {
            let mut running_scores = vec![NEG; nb];
            running_scores[0] = 0.0;
            Beams {
                running: vec![prompt.to_vec(); nb],
                running_scores,
                finished: vec![prompt.to_vec(); nb],
                finished_scores: vec![NEG; nb],
                is_finished: vec![false; nb],
                improvable: true,
            }
        })
        .collect();
    let mut input: Vec<Vec<u32>> = vec![prompt.to_vec(); n * nb];
    let mut cur_len = prompt_len;
    loop {
        let logits = step_logits(decoder, &input, &mut cache, &device);
        let vocab = logits[0].len();
        let mut all_hit = true;
        let mut source_rows = Vec::with_capacity(n * nb);
        for (b, st) in state.iter_mut().enumerate() {
            // Accumulated log-probabilities over the beams' continuations.
            let mut acc = Vec::with_capacity(nb * vocab);
            for j in 0..nb {
                let mut row = logits[b * nb + j].clone();
                log_softmax(&mut row);
                process(&mut row, &st.running[j], opts, ids.sep);
                let base = st.running_scores[j];
                acc.extend(row.into_iter().map(|x| x + base));
            }
            let top = top_k(&acc, keep);
            let cand_scores: Vec<f32> = top.iter().map(|&i| acc[i]).collect();
            let cand_beam: Vec<usize> = top.iter().map(|&i| i / vocab).collect();
            let cand_seq: Vec<Vec<u32>> = top
                .iter()
                .map(|&i| {
                    let mut s = st.running[i / vocab].clone();
                    s.push((i % vocab) as u32);
                    s
                })
                .collect();
            let hits: Vec<bool> = cand_seq
                .iter()
                .map(|s| s.last() == Some(&ids.sep) || s.len() >= opts.max_length)
                .collect();
            all_hit &= hits.iter().all(|&h| h);
            // Next running beams: the best candidates that did not stop.
            let masked: Vec<f32> = cand_scores
                .iter()
                .zip(&hits)
                .map(|(&s, &h)| s + if h { NEG } else { -0.0 })
                .collect();
            let next = top_k(&masked, nb);
            // Finished hypotheses: merge the new ones among the top `num_beams` candidates.
            let denom = ((cur_len + 1 - prompt_len) as f64).powf(lp) as f32;
            let full =
                st.is_finished.iter().all(|&f| f) && opts.early_stopping == EarlyStopping::Stop;
            let mut merged_scores = st.finished_scores.clone();
            let mut merged_done = st.is_finished.clone();
            for (c, (&s, &h)) in cand_scores.iter().zip(&hits).enumerate() {
                let just = h && c < nb;
                let mut s = s / denom;
                s += if full { NEG } else { -0.0 };
                s += if st.improvable { -0.0 } else { NEG };
                s += if just { -0.0 } else { NEG };
                merged_scores.push(s);
                merged_done.push(just);
            }
            let best = top_k(&merged_scores, nb);
            let finished: Vec<Vec<u32>> = best
                .iter()
                .map(|&i| if i < nb { st.finished[i].clone() } else { cand_seq[i - nb].clone() })
                .collect();
            st.finished_scores = best.iter().map(|&i| merged_scores[i]).collect();
            st.is_finished = best.iter().map(|&i| merged_done[i]).collect();
            st.finished = finished;
            st.running = next.iter().map(|&i| cand_seq[i].clone()).collect();
            st.running_scores = next.iter().map(|&i| masked[i]).collect();
            source_rows.extend(next.iter().map(|&i| b * nb + cand_beam[i]));
        }
        cache.reorder_beams(&source_rows);
        cur_len += 1;
        let best_len = if opts.early_stopping == EarlyStopping::Never && lp > 0.0 {
            opts.max_length - prompt_len
        } else {
            cur_len - prompt_len
        };
        let best_denom = (best_len as f64).powf(lp) as f32;
        for st in &mut state {
            let best_possible = st.running_scores[0] / best_denom;
            let worst = st.finished_scores.iter().copied().fold(f32::INFINITY, f32::min);
            let beatable =
                st.is_finished.iter().any(|&f| best_possible > if f { worst } else { NEG });
            st.improvable &= beatable;
        }
        let improvement_possible = state.iter().any(|s| s.improvable);
        let all_finished = state.iter().all(|s| s.is_finished.iter().all(|&f| f));
        let open = !(all_finished && opts.early_stopping == EarlyStopping::Stop);
        if !(improvement_possible && open && !all_hit) {
            break;
        }
        input = state
            .iter()
            .flat_map(|st| st.running.iter().map(|s| vec![*s.last().expect("non-empty")]))
            .collect();
    }
    state.into_iter().map(|mut st| st.finished.swap_remove(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_with_stable_ties() {
        assert_eq!(top_k(&[1.0, 3.0, 3.0, -1.0, 2.0], 3), vec![1, 2, 4]);
        assert_eq!(top_k(&[0.5, f32::NEG_INFINITY], 2), vec![0, 1]);
    }

    #[test]
    fn processors_match_transformers() {
        let opts = GenerateOptions { repetition_penalty: 2.0, min_length: 3, ..Default::default() };
        let mut s = vec![1.0, -1.0, 4.0, 0.5];
        process(&mut s, &[0, 1, 1], &opts, 3);
        assert_eq!(s, vec![0.5, -2.0, 4.0, 0.5]);
        process(&mut s, &[2, 2], &opts, 3);
        assert_eq!(s, vec![0.5, -2.0, 2.0, f32::NEG_INFINITY]);
    }

    #[test]
    fn options_are_checked() {
        let o = GenerateOptions { num_beams: 0, ..Default::default() };
        assert_eq!(check_options(&o, 1, 512), Err(GenerateError::ZeroBeams));
        let o = GenerateOptions { max_length: 4, ..Default::default() };
        assert!(matches!(check_options(&o, 4, 512), Err(GenerateError::PromptTooLong { .. })));
        assert!(matches!(check_options(&o, 1, 3), Err(GenerateError::TooLong { .. })));
        assert!(check_options(&o, 3, 4).is_ok());
    }
}
