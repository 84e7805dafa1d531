//! The prompt corpora the simulator draws from: one JSONL file per corpus, each line
//! `{"source", "group", "turn", "text"}` (data/corpora/README.md).
//!
//! The repository bundles the corpora whose license allows shipping them (`data/corpora/`);
//! the others are optional and read from extra folders when the user has them. A corpus is
//! taken from the first folder of the search order that holds its file; an unshippable corpus
//! found nowhere is replaced by its [`CorpusId::stand_in`], a bundled corpus of the same role,
//! so that a clone simulates every strategy with nothing outside the repository. A shippable
//! corpus found nowhere is an error: the checkout is incomplete.
//!
//! Every file is read whole into memory (8 MB bundled, 24 MB with the optional ones) because
//! strategies sample from them at random. Lines are validated like request logs are: a bad line stops the run with the
//! file, the 1-based line and the field, so that a corrupt corpus is fixed at its source rather
//! than silently producing a skewed dataset. Rows sharing a `group` become one conversation with
//! its turns in `turn` order; rows without a group are single-turn conversations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ingest::{brief, for_each_line};

/// The corpora the strategies use, one file each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum CorpusId {
    // Human traffic.
    ShareGpt,
    HhRlhf,
    Oasst1Zh,
    Lima,
    ArenaHard,
    AwesomePrompts,
    // Systematic task sets.
    Gsm8k,
    ZeroShotCot,
    HumanEval,
    Mbpp,
    TruthfulQa,
    AlpacaEn,
    AlpacaSeed,
    DistillMeta,
    IdentityProbes,
    GlaiveToolcall,
    AgentbenchOs,
}

impl CorpusId {
    pub(crate) const ALL: [CorpusId; 17] = [
        CorpusId::ShareGpt,
        CorpusId::HhRlhf,
        CorpusId::Oasst1Zh,
        CorpusId::Lima,
        CorpusId::ArenaHard,
        CorpusId::AwesomePrompts,
        CorpusId::Gsm8k,
        CorpusId::ZeroShotCot,
        CorpusId::HumanEval,
        CorpusId::Mbpp,
        CorpusId::TruthfulQa,
        CorpusId::AlpacaEn,
        CorpusId::AlpacaSeed,
        CorpusId::DistillMeta,
        CorpusId::IdentityProbes,
        CorpusId::GlaiveToolcall,
        CorpusId::AgentbenchOs,
    ];

    /// Whether the corpus's license lets its text ship inside this repository (MIT, Apache-2.0
    /// or CC0, per data/corpora/README.md).
    pub(crate) fn shippable(self) -> bool {
        !matches!(
            self,
            CorpusId::ShareGpt
                | CorpusId::Lima
                | CorpusId::ZeroShotCot
                | CorpusId::Mbpp
                | CorpusId::AlpacaEn
                | CorpusId::AlpacaSeed
        )
    }

    /// The shippable corpus that plays the same role (human conversations, math, code,
    /// instructions), used in its place under `--permissive-only`.
    pub(crate) fn stand_in(self) -> CorpusId {
        match self {
            CorpusId::ShareGpt => CorpusId::HhRlhf,
            CorpusId::Lima | CorpusId::AlpacaEn => CorpusId::ArenaHard,
            CorpusId::ZeroShotCot => CorpusId::Gsm8k,
            CorpusId::Mbpp => CorpusId::HumanEval,
            CorpusId::AlpacaSeed => CorpusId::TruthfulQa,
            other => other,
        }
    }

    /// Whether `group` names a conversation; in the prompt collection it names an author, whose
    /// prompts are unrelated single requests.
    pub(crate) fn groups_are_conversations(self) -> bool {
        self != CorpusId::AwesomePrompts
    }

    pub(crate) fn file_name(self) -> &'static str {
        match self {
            CorpusId::ShareGpt => "sharegpt_v3_dev.jsonl",
            CorpusId::HhRlhf => "hh_rlhf_harmless_test.jsonl",
            CorpusId::Oasst1Zh => "oasst1_zh.jsonl",
            CorpusId::Lima => "lima.jsonl",
            CorpusId::ArenaHard => "arena_hard_v01.jsonl",
            CorpusId::AwesomePrompts => "awesome_chatgpt_prompts.jsonl",
            CorpusId::Gsm8k => "gsm8k.jsonl",
            CorpusId::ZeroShotCot => "zero_shot_cot.jsonl",
            CorpusId::HumanEval => "humaneval.jsonl",
            CorpusId::Mbpp => "mbpp.jsonl",
            CorpusId::TruthfulQa => "truthfulqa.jsonl",
            CorpusId::AlpacaEn => "alpaca_en_demo_1k.jsonl",
            CorpusId::AlpacaSeed => "alpaca_seed_tasks.jsonl",
            CorpusId::DistillMeta => "distill_meta_prompts.jsonl",
            CorpusId::IdentityProbes => "identity_probes.jsonl",
            CorpusId::GlaiveToolcall => "glaive_toolcall_demo.jsonl",
            CorpusId::AgentbenchOs => "agentbench_os.jsonl",
        }
    }
}

/// One corpus file.
#[derive(Debug, Clone)]
pub(crate) struct Corpus {
    /// Row texts in file order.
    pub(crate) texts: Vec<String>,
    /// Index into `sources` for each row.
    pub(crate) source_of: Vec<u16>,
    pub(crate) sources: Vec<String>,
    /// Conversations in order of first appearance; each lists row indices in turn order.
    pub(crate) convs: Vec<Vec<u32>>,
    /// For each row, the conversation (index into `convs`) it belongs to.
    pub(crate) conv_of: Vec<u32>,
}

impl Corpus {
    pub(crate) fn text(&self, row: u32) -> &str {
        &self.texts[row as usize]
    }

    pub(crate) fn source(&self, row: u32) -> &str {
        &self.sources[self.source_of[row as usize] as usize]
    }

    /// Rows whose `source` ends with one of `suffixes` (e.g. `":commonsenseqa"`), in file order.
    pub(crate) fn rows_with_source(&self, suffixes: &[&str]) -> Vec<u32> {
        (0..self.texts.len() as u32)
            .filter(|&r| suffixes.iter().any(|s| self.source(r).ends_with(s)))
            .collect()
    }

    /// What identifies conversation `conv` for `--slice`: its first turn, without the
    /// zero-shot-CoT scaffold (see [`item_key`]).
    pub(crate) fn conv_key(&self, conv: u32) -> &str {
        let first = self.convs[conv as usize].first().copied().unwrap_or(0);
        item_key(self.text(first))
    }

    /// The conversations whose key falls in slice `i` of `n`, with their rows renumbered in
    /// file order (so a benchmark harness still walks a dataset in order).
    fn slice(&self, i: u32, n: u32) -> Corpus {
        let keep: Vec<bool> = (0..self.convs.len() as u32)
            .map(|c| slice_of(self.conv_key(c), n) == i)
            .collect();
        let mut out = Corpus {
            texts: Vec::new(),
            source_of: Vec::new(),
            sources: self.sources.clone(),
            convs: Vec::new(),
            conv_of: Vec::new(),
        };
        // Old conversation index -> new one, assigned in order of first appearance.
        let mut new_conv: Vec<Option<u32>> = vec![None; self.convs.len()];
        let mut new_row: Vec<u32> = vec![u32::MAX; self.texts.len()];
        for (row, &c) in self.conv_of.iter().enumerate() {
            let c = c as usize;
            if !keep[c] {
                continue;
            }
            let nc = *new_conv[c].get_or_insert_with(|| {
                out.convs.push(Vec::new());
                out.convs.len() as u32 - 1
            });
            new_row[row] = out.texts.len() as u32;
            out.texts.push(self.texts[row].clone());
            out.source_of.push(self.source_of[row]);
            out.conv_of.push(nc);
        }
        for (c, rows) in self.convs.iter().enumerate() {
            if let Some(nc) = new_conv[c] {
                out.convs[nc as usize] = rows.iter().map(|&r| new_row[r as usize]).collect();
            }
        }
        out
    }
}

/// The text an item is known by across corpora: trimmed, and without the "Q: ... A: Let's
/// think step by step." scaffold, so that a GSM8K test question and its zero-shot-CoT copy are
/// the same item.
pub(crate) fn item_key(text: &str) -> &str {
    let t = text.strip_prefix("Q: ").unwrap_or(text);
    let t = t.strip_suffix("A: Let's think step by step.").unwrap_or(t);
    t.trim()
}

/// Stable 64-bit hash of an item key: FNV-1a over its UTF-8 bytes, then the MurmurHash3
/// finaliser so that every bit (and so `% n` for small `n`) depends on the whole key. It does
/// not depend on the seed, the platform or the order of the corpus.
pub(crate) fn slice_hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Which of `n` slices an item with key `key` belongs to.
pub(crate) fn slice_of(key: &str, n: u32) -> u32 {
    (slice_hash(key) % u64::from(n.max(1))) as u32
}

/// All corpora, indexed by [`CorpusId`].
#[derive(Debug)]
pub(crate) struct Corpora {
    corpora: Vec<Corpus>,
    /// The corpora that were found in no folder and hold their stand-in's rows, in
    /// [`CorpusId::ALL`] order.
    stood_in: Vec<CorpusId>,
}

impl Corpora {
    /// Read every corpus the strategies need, each from the first of `dirs` that holds its file
    /// (see the module header for stand-ins). Every folder must exist.
    pub(crate) fn load(dirs: &[PathBuf]) -> Result<Self> {
        let Some(last) = dirs.last() else {
            return Err(Error::Usage("no corpora folder given".into()));
        };
        for dir in dirs {
            if !dir.is_dir() {
                return Err(Error::file(
                    dir,
                    "corpora directory not found (expected a folder of *.jsonl prompt corpora, \
                     see data/corpora/README.md)",
                ));
            }
        }
        // Every file is located before any is parsed, so a missing one fails at once.
        let mut paths: Vec<Option<PathBuf>> = Vec::with_capacity(CorpusId::ALL.len());
        for id in CorpusId::ALL {
            let found = dirs
                .iter()
                .map(|d| d.join(id.file_name()))
                .find(|p| p.is_file());
            if found.is_none() && id.shippable() {
                return Err(Error::file(
                    &last.join(id.file_name()),
                    "corpus file not found",
                ));
            }
            paths.push(found);
        }
        let mut corpora = Vec::with_capacity(CorpusId::ALL.len());
        for (id, path) in CorpusId::ALL.into_iter().zip(&paths) {
            corpora.push(match path {
                Some(p) => Some(load_corpus(id, p)?),
                None => None,
            });
        }
        let stood_in: Vec<CorpusId> = CorpusId::ALL
            .into_iter()
            .filter(|&id| corpora[id as usize].is_none())
            .collect();
        let corpora = CorpusId::ALL
            .iter()
            .map(|&id| {
                corpora[id as usize]
                    .clone()
                    .or_else(|| corpora[id.stand_in() as usize].clone())
                    .expect("every stand-in is shippable, so it was loaded")
            })
            .collect();
        Ok(Corpora { corpora, stood_in })
    }

    /// The corpora found in no folder, replaced by their stand-ins.
    pub(crate) fn stood_in(&self) -> &[CorpusId] {
        &self.stood_in
    }

    /// Every corpus whose license does not allow shipping its text replaced by its
    /// [`CorpusId::stand_in`], so that the traffic can be committed (bundled examples, test
    /// fixtures). Strategies keep their shape; only the texts they draw from change.
    pub(crate) fn permissive_only(&self) -> Corpora {
        let corpora = CorpusId::ALL
            .iter()
            .map(|&id| {
                let source = id.stand_in();
                debug_assert!(source.shippable());
                self.get(source).clone()
            })
            .collect();
        let stood_in = CorpusId::ALL
            .into_iter()
            .filter(|id| !id.shippable())
            .collect();
        Corpora { corpora, stood_in }
    }

    pub(crate) fn get(&self, id: CorpusId) -> &Corpus {
        &self.corpora[id as usize]
    }

    /// Only the items of slice `i` of `n` (`--slice I/N`): the conversations (for conversational
    /// corpora) or rows (for task sets and the prompt collection) whose [`item_key`] hashes to
    /// `i` modulo `n`. The key is text, not position, so the same question in two files (GSM8K
    /// test and its zero-shot-CoT copy) or two conversations opening with the same turn fall in
    /// the same slice; slices are disjoint and together cover every corpus. A corpus that a
    /// slice leaves empty is a usage error (too many slices for it).
    pub(crate) fn slice(&self, i: u32, n: u32) -> Result<Corpora> {
        if n == 0 || i >= n {
            return Err(Error::Usage(format!(
                "a corpus slice must be I/N with 0 <= I < N, got {i}/{n}"
            )));
        }
        let mut corpora = Vec::with_capacity(self.corpora.len());
        for (id, c) in CorpusId::ALL.iter().zip(&self.corpora) {
            let s = c.slice(i, n);
            if s.texts.is_empty() {
                return Err(Error::Usage(format!(
                    "corpus slice {i}/{n} leaves corpus {} with no items (it has {}); use fewer slices",
                    id.file_name(),
                    c.convs.len()
                )));
            }
            corpora.push(s);
        }
        Ok(Corpora {
            corpora,
            stood_in: self.stood_in.clone(),
        })
    }
}

#[derive(Deserialize)]
struct RawRow {
    source: Option<Value>,
    group: Option<Value>,
    turn: Option<Value>,
    text: Option<Value>,
}

fn load_corpus(id: CorpusId, path: &Path) -> Result<Corpus> {
    let mut corpus = Corpus {
        texts: Vec::new(),
        source_of: Vec::new(),
        sources: Vec::new(),
        convs: Vec::new(),
        conv_of: Vec::new(),
    };
    let mut source_idx: HashMap<String, u16> = HashMap::new();
    let mut group_idx: HashMap<String, usize> = HashMap::new();
    // (turn, row) per conversation, sorted once everything is read.
    let mut turns: Vec<Vec<(u64, u32)>> = Vec::new();
    for_each_line(path, |line, bytes| {
        let Some(row) = parse_row(path, line, bytes)? else {
            return Ok(());
        };
        let n = corpus.texts.len() as u32;
        let next_source = source_idx.len();
        let s = *source_idx.entry(row.source.clone()).or_insert_with(|| {
            corpus.sources.push(row.source);
            next_source as u16
        });
        corpus.source_of.push(s);
        corpus.texts.push(row.text);
        match row.group.filter(|_| id.groups_are_conversations()) {
            None => turns.push(vec![(row.turn, n)]),
            Some(g) => {
                let next = turns.len();
                let c = *group_idx.entry(g).or_insert(next);
                if c == next {
                    turns.push(Vec::new());
                }
                turns[c].push((row.turn, n));
            }
        }
        Ok(())
    })?;
    if corpus.texts.is_empty() {
        return Err(Error::file(path, "empty corpus: no rows"));
    }
    corpus.conv_of = vec![0; corpus.texts.len()];
    for (c, t) in turns.iter().enumerate() {
        for &(_, row) in t {
            corpus.conv_of[row as usize] = c as u32;
        }
    }
    corpus.convs = turns
        .into_iter()
        .map(|mut t| {
            t.sort_by_key(|&(turn, _)| turn);
            t.into_iter().map(|(_, row)| row).collect()
        })
        .collect();
    Ok(corpus)
}

struct Row {
    source: String,
    group: Option<String>,
    turn: u64,
    text: String,
}

fn parse_row(path: &Path, line: u64, bytes: &[u8]) -> Result<Option<Row>> {
    let err = |field: &str, msg: String| Error::input(path, line, field, msg);
    let Some(raw) = crate::ingest::parse_json_line::<RawRow>(path, line, bytes)? else {
        return Ok(None);
    };
    let source = match raw.source {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err(err("source", "missing required field".into())),
        Some(v) => {
            return Err(err(
                "source",
                format!("expected a string, got {}", brief(&v)),
            ))
        }
    };
    let group = match raw.group {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(v) => {
            return Err(err(
                "group",
                format!("expected a string or null, got {}", brief(&v)),
            ))
        }
    };
    let turn = match raw.turn {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
        Some(v) => {
            return Err(err(
                "turn",
                format!("expected a non-negative integer, got {}", brief(&v)),
            ))
        }
    };
    let text = match raw.text {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) => return Err(err("text", "must not be empty".into())),
        None | Some(Value::Null) => return Err(err("text", "missing required field".into())),
        Some(v) => return Err(err("text", format!("expected a string, got {}", brief(&v)))),
    };
    Ok(Some(Row {
        source,
        group,
        turn,
        text,
    }))
}
