//! `simulate`: labelled request-log traffic built from real prompt corpora.
//!
//! No public log of a distillation campaign exists, so the detector is trained and evaluated on
//! traffic that is synthetic in its arrangement but real in its text: every prompt a benign
//! person sends is a real human turn (ShareGPT, HH-RLHF, OASST, LIMA, Arena), every task an
//! extractor sweeps is a real dataset item (GSM8K, HumanEval, MBPP, TruthfulQA, ...). What the
//! simulator adds is who sends what, when, and in what wrapper: accounts, sessions, time zones,
//! rate limits, sybil load balancing, shared system prompts.
//!
//! The hard part of detection is not the obvious extractor but the benign look-alike, so half
//! of the strategies here are hard negatives: bulk business jobs (one template over thousands
//! of documents), one-off benchmark runs (a dataset slice in a burst), narrow tool-calling
//! integrations (the same flow all day) and heavy individual users. Conversely, campaign
//! accounts are kept small (some send ~10 requests) and wrappers are drawn from shared,
//! multilingual, noised pools, so that a single account or a single phrase gives little away
//! and it is the campaign, seen across accounts, that does.
//!
//! Output (contracts in DESIGN.md): `traffic.jsonl`, request-log lines sorted by timestamp, and
//! `labels.jsonl`, one line per account `{"account_id", "label", "campaign"?, "kind"}` sorted by
//! account id. The same seed and corpora give the same bytes. Requests fall inside the period,
//! except that a conversation or a queue started near its end may run a few minutes past it.
//!
//! For held-out evaluation a run can be restricted to some strategy kinds (`--kinds`) and to
//! one slice of the corpus items (`--slice I/N`, a seed-independent hash of each item's text,
//! see `Corpora::slice` in `corpus`); `--campaign-prefix` and `--account-prefix` keep the ids of
//! separately simulated files apart when they are concatenated. With none of these flags the
//! output is what it was before they existed.
//!
//! Layout: `corpus` reads the corpora; `timing` models when things happen; `text` holds
//! wrappers, templates and noise; `client` the non-prompt metadata; `benign` and
//! `campaign` the strategies. To add a strategy, implement `Strategy` and list it in
//! `benign_plan` or `extraction_plan`: that is the one place the run draws from.

mod benign;
mod campaign;
mod churn;
mod client;
mod corpus;
mod endpoint;
pub use endpoint::EndpointTask;
mod hard_negatives;
mod text;
mod timing;

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use chrono::{DateTime, SecondsFormat};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{Error, IoContext, Result};

use corpus::{Corpora, CorpusId};
use timing::Window;

/// Start of the simulated period unless `--start` is given (a Monday, 00:00 UTC).
pub const DEFAULT_START: &str = "2025-06-02T00:00:00Z";

/// What to simulate and where to write it.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Folders of prompt corpora (`*.jsonl`, see data/corpora/README.md), searched in order for
    /// each corpus file; normally the user's extra folders, then [`bundled_corpora_dir`].
    pub corpora: Vec<PathBuf>,
    /// Request log to write.
    pub traffic: PathBuf,
    /// Labels to write.
    pub labels: PathBuf,
    pub seed: u64,
    /// Benign accounts (campaign accounts come on top).
    pub benign_accounts: usize,
    /// Extraction campaigns, drawn in turn from the campaign kinds (11 covers each once).
    pub campaigns: usize,
    pub days: u32,
    /// Start of the period, epoch milliseconds.
    pub start_ms: i64,
    /// Only these strategy kinds (names as in labels' `kind`); `None` for all. Benign accounts
    /// are shared among the allowed benign kinds in proportion to their usual shares, and
    /// campaigns cycle over the allowed extraction kinds. With no benign kind allowed there are
    /// no benign accounts; with no extraction kind, no campaigns.
    pub kinds: Option<Vec<String>>,
    /// `(i, n)`: only the corpus items in slice `i` of `n` (see `Corpora::slice` in `corpus`).
    pub slice: Option<(u32, u32)>,
    /// Campaign ids are `{campaign_prefix}-001`, ... (default `camp`).
    pub campaign_prefix: String,
    /// Account ids are `{account_prefix}-{10 hex digits}` (default `acct`).
    pub account_prefix: String,
    /// Draw only from corpora whose license allows shipping the text (see
    /// `CorpusId::stand_in`), for committed examples and fixtures.
    pub permissive_only: bool,
    /// Students of the task endpoint ([`endpoint`]); 0 for none.
    pub task_endpoint: usize,
    /// What the task endpoint serves.
    pub endpoint_task: EndpointTask,
    /// Which campaign wording to draw from ([`Phrasings`]).
    pub phrasings: Phrasings,
    /// Randomise each campaign's strategy around its kind (`Campaign::randomised`), and each
    /// person's share of task-set items around `honest_task_share` (`benign::human_requests`).
    pub randomise: bool,
    /// Share of a person's conversations that are one item of a public task set (homework
    /// maths, a coding exercise, a trivia question), the items extractors sweep; 0 keeps
    /// people to the chat corpora (`benign::Persona`).
    pub honest_task_share: f64,
    /// Share of people (honest accounts and campaigns' human cover) who habitually add a
    /// reasoning, detail or format request to their questions (`benign::Habit`); 0 for none.
    pub people_prompting: f64,
    /// People drawn over a wider range (`benign::human_requests`): each person's corpus
    /// weights scaled at random, and twice `people_prompting`'s share with a habit. Measured
    /// for the training week and not adopted (docs/evaluation.md, session 20).
    pub wide_people: bool,
    /// Share of people who reach the API from changing networks, a phone carrier's or a VPN's
    /// (`churn`); 0 keeps every person on their own one to three addresses.
    pub address_churn: f64,
}

/// Campaign wrappers are split into two disjoint banks, so that a model trained on traffic of
/// one bank is tested on wording it has never seen: `Train` holds the even-numbered wrappers
/// of every style's list, `Test` the odd-numbered ones, `All` both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phrasings {
    #[default]
    All,
    Train,
    Test,
}

impl Phrasings {
    /// The wrappers of `list` in this bank.
    pub(crate) fn bank<T: Copy>(self, list: &[T]) -> Vec<T> {
        list.iter()
            .enumerate()
            .filter(|(i, _)| match self {
                Phrasings::All => true,
                Phrasings::Train => i % 2 == 0,
                Phrasings::Test => i % 2 == 1,
            })
            .map(|(_, w)| *w)
            .collect()
    }
}

impl SimOptions {
    /// Defaults: 200 benign accounts, 8 campaigns, 7 days from [`DEFAULT_START`].
    pub fn new(corpora: Vec<PathBuf>, traffic: PathBuf, labels: PathBuf, seed: u64) -> Self {
        SimOptions {
            corpora,
            traffic,
            labels,
            seed,
            benign_accounts: 200,
            campaigns: 11,
            days: 7,
            start_ms: parse_start(DEFAULT_START).unwrap_or(0),
            kinds: None,
            slice: None,
            campaign_prefix: "camp".into(),
            account_prefix: "acct".into(),
            permissive_only: false,
            task_endpoint: 0,
            endpoint_task: EndpointTask::Math,
            phrasings: Phrasings::All,
            randomise: false,
            honest_task_share: 0.0,
            people_prompting: 0.0,
            wide_people: false,
            address_churn: 0.0,
        }
    }

    /// Whether `kind` may be generated under `--kinds` (a probe only when named).
    pub fn allows(&self, kind: &str) -> bool {
        match &self.kinds {
            Some(ks) => ks.iter().any(|k| k == kind),
            None => !campaign::is_probe(kind),
        }
    }

    /// Benign accounts and campaigns that will actually be generated once `--kinds` is applied.
    fn effective_counts(&self) -> (usize, usize) {
        let (benign, extraction) = kind_names();
        let benign_accounts = if benign.iter().any(|k| self.allows(k)) {
            self.benign_accounts
        } else {
            0
        };
        let campaigns = if extraction
            .iter()
            .chain(&probe_names())
            .any(|k| self.allows(k))
        {
            self.campaigns
        } else {
            0
        };
        (benign_accounts, campaigns)
    }

    /// Checks that need no I/O.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.honest_task_share) {
            return Err(Error::Usage(format!(
                "--honest-task-share must be in [0, 1), got {}",
                self.honest_task_share
            )));
        }
        if !(0.0..=1.0).contains(&self.people_prompting) {
            return Err(Error::Usage(format!(
                "--people-prompting must be in [0, 1], got {}",
                self.people_prompting
            )));
        }
        if !(0.0..=1.0).contains(&self.address_churn) {
            return Err(Error::Usage(format!(
                "--address-churn must be in [0, 1], got {}",
                self.address_churn
            )));
        }
        if self.days == 0 || self.days > 366 {
            return Err(Error::Usage(format!(
                "the period must be between 1 and 366 days, got {}",
                self.days
            )));
        }
        if let Some(kinds) = &self.kinds {
            let (benign, extraction) = kind_names();
            let probes = probe_names();
            let valid = || {
                format!(
                    "valid kinds: benign {}; extraction {}; probes (only when named) {}",
                    benign.join(", "),
                    extraction.join(", "),
                    probes.join(", ")
                )
            };
            if kinds.is_empty() {
                return Err(Error::Usage(format!(
                    "the list of kinds names no kind; {}",
                    valid()
                )));
            }
            for k in kinds {
                let k_ = k.as_str();
                if !benign.contains(&k_) && !extraction.contains(&k_) && !probes.contains(&k_) {
                    return Err(Error::Usage(format!(
                        "unknown kind {k:?} in the list of kinds; {}",
                        valid()
                    )));
                }
            }
        }
        if let Some((i, n)) = self.slice {
            if n == 0 || i >= n {
                return Err(Error::Usage(format!(
                    "a corpus slice must be I/N with 0 <= I < N, got {i}/{n}"
                )));
            }
        }
        for (what, prefix) in [
            ("the campaign id prefix", &self.campaign_prefix),
            ("the account id prefix", &self.account_prefix),
        ] {
            if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::Usage(format!(
                    "{what} must be non-empty, without spaces or control characters, got {prefix:?}"
                )));
            }
        }
        if self.benign_accounts == 0 && self.campaigns == 0 && self.task_endpoint == 0 {
            return Err(Error::Usage(
                "nothing to simulate: no benign accounts, no campaigns and no task-endpoint students".into(),
            ));
        }
        if self.effective_counts() == (0, 0) && self.task_endpoint == 0 {
            return Err(Error::Usage(
                "nothing to simulate: the kinds allowed hold no benign kind and there are no \
                 campaigns, or no extraction kind and there are no benign accounts"
                    .into(),
            ));
        }
        if self.traffic == self.labels {
            return Err(Error::Usage(format!(
                "the request log and the labels would be the same file: {}",
                self.traffic.display()
            )));
        }
        Ok(())
    }
}

/// Parse `I/N` (`--slice`); the range is checked by [`SimOptions::validate`].
pub fn parse_slice(s: &str) -> std::result::Result<(u32, u32), String> {
    let bad = || format!("expected I/N with whole numbers, e.g. 0/2, got {s:?}");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i = i.trim().parse().map_err(|_| bad())?;
    let n = n.trim().parse().map_err(|_| bad())?;
    Ok((i, n))
}

/// Names of the probes: extraction kinds written against the detector after it was built,
/// generated only when `--kinds` names them (after every allowed kind of the plan), so that
/// default traffic, and every model trained on it, never holds them.
pub fn probe_names() -> Vec<&'static str> {
    campaign::probes().iter().map(|c| c.kind).collect()
}

/// Names of the benign and the extraction strategy kinds, in plan order.
pub fn kind_names() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        benign_plan().iter().map(|(s, _)| s.kind()).collect(),
        extraction_plan().iter().map(|s| s.kind()).collect(),
    )
}

/// Parse an RFC 3339 start time to epoch milliseconds.
pub fn parse_start(s: &str) -> std::result::Result<i64, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("not an RFC 3339 timestamp ({e}): {s:?}"))
}

/// Accounts and requests of one strategy kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindStats {
    pub label: u8,
    pub accounts: usize,
    pub requests: usize,
}

/// What a simulation produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimStats {
    pub accounts: usize,
    pub benign: usize,
    pub extraction: usize,
    pub campaigns: usize,
    pub requests: usize,
    /// Per strategy kind, by name.
    pub kinds: BTreeMap<String, KindStats>,
    pub first_ms: i64,
    pub last_ms: i64,
    /// `(missing corpus file, the bundled file that stood in for it)`, for corpora found in no
    /// folder (or all unshippable ones under `permissive_only`).
    pub stood_in: Vec<(&'static str, &'static str)>,
}

impl SimStats {
    /// One line: accounts, labels, campaigns, requests.
    pub fn summary(&self) -> String {
        format!(
            "{} accounts ({} benign, {} extraction in {} campaigns), {} requests",
            self.accounts, self.benign, self.extraction, self.campaigns, self.requests
        )
    }

    /// One line per kind: label, accounts, requests.
    pub fn kind_table(&self) -> String {
        let lines: Vec<String> = self
            .kinds
            .iter()
            .map(|(kind, k)| {
                format!(
                    "  {kind:<20} label {}  {:>5} accounts  {:>7} requests",
                    k.label, k.accounts, k.requests
                )
            })
            .collect();
        lines.join("\n")
    }
}

/// Read the corpora, generate the accounts, write traffic and labels.
pub fn simulate(opts: &SimOptions) -> Result<SimStats> {
    opts.validate()?;
    let corpora = Corpora::load(&opts.corpora)?;
    let corpora = match opts.slice {
        Some((i, n)) => corpora.slice(i, n)?,
        None => corpora,
    };
    let corpora = if opts.permissive_only {
        corpora.permissive_only()
    } else {
        corpora
    };
    let accounts = generate(&corpora, opts);
    write_traffic(&opts.traffic, &accounts)?;
    write_labels(&opts.labels, &accounts)?;
    let mut stats = stats(&accounts);
    stats.stood_in = corpora
        .stood_in()
        .iter()
        .map(|id| (id.file_name(), id.stand_in().file_name()))
        .collect();
    Ok(stats)
}

/// The corpora bundled with the repository: `$DISTILLGUARD_CORPORA_DIR` if set, else
/// `data/corpora` under the current directory if it exists there, else in this source checkout.
pub fn bundled_corpora_dir() -> PathBuf {
    crate::embed::default_dir("DISTILLGUARD_CORPORA_DIR", "data/corpora")
}

// ---- the data the strategies produce -------------------------------------------------------

/// Which corpus row a prompt was made from (for tests): corpus and row, and for a replayed
/// conversation its index and the turn's position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) corpus: CorpusId,
    pub(crate) row: u32,
    pub(crate) conv: Option<u32>,
    pub(crate) pos: u32,
}

impl Origin {
    /// A row used on its own (a task, a document).
    pub(crate) fn row(corpus: CorpusId, row: u32) -> Self {
        Origin {
            corpus,
            row,
            conv: None,
            pos: 0,
        }
    }
}

/// One request before serialisation.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) ts: i64,
    pub(crate) prompt: String,
    pub(crate) conversation_id: Option<Rc<str>>,
    pub(crate) system_prompt: Option<Rc<str>>,
    pub(crate) response_tokens: Option<u64>,
    pub(crate) model: Option<&'static str>,
    pub(crate) ip: Option<Rc<str>>,
    pub(crate) user_agent: Option<&'static str>,
    /// Only tests read it (turn order); it is not written.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) origin: Option<Origin>,
}

/// One simulated account with its ground truth.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) label: u8,
    pub(crate) campaign: Option<String>,
    pub(crate) requests: Vec<Req>,
}

/// A source of accounts. Benign strategies produce one person or one organisation per call;
/// extraction strategies produce one whole campaign (its id is assigned by the caller).
pub(crate) trait Strategy {
    /// Name written to the `kind` field of labels.jsonl.
    fn kind(&self) -> &'static str;
    /// 0 benign, 1 extraction.
    fn label(&self) -> u8;
    /// Generate one unit of at most `max_accounts` accounts (benign) or one campaign.
    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, max_accounts: usize) -> Vec<Account>;
}

/// Benign strategies and their share of the benign accounts.
pub(crate) fn benign_plan() -> Vec<(Box<dyn Strategy>, f64)> {
    vec![
        (Box::new(benign::Human::casual()), 0.54),
        (Box::new(benign::Human::heavy()), 0.07),
        (Box::new(benign::BulkBusiness::general()), 0.07),
        (Box::new(benign::BenchmarkEval::answer_only()), 0.05),
        (Box::new(benign::NarrowIntegration), 0.05),
        (Box::new(benign::BenchmarkEval::cot()), 0.04),
        (Box::new(benign::BenchmarkEval::red_team()), 0.03),
        (Box::new(benign::BulkBusiness::translation()), 0.03),
        (Box::new(hard_negatives::TutoringPlatform), 0.03),
        (Box::new(hard_negatives::EnterpriseTeam), 0.06),
        (Box::new(hard_negatives::CodingAgentUser), 0.03),
    ]
}

/// Extraction strategies, in the order campaigns are drawn (cycled when there are more
/// campaigns than strategies). The probes are not among them: see [`probe_names`].
pub(crate) fn extraction_plan() -> Vec<Box<dyn Strategy>> {
    campaign::presets()
        .into_iter()
        .map(|c| Box::new(c) as Box<dyn Strategy>)
        .collect()
}

/// A shuffled list dealt without replacement, reshuffled when used up.
#[derive(Debug, Clone)]
pub(crate) struct Deck {
    items: Vec<u32>,
    next: usize,
}

impl Deck {
    pub(crate) fn new(items: Vec<u32>, rng: &mut StdRng) -> Self {
        let mut d = Deck { items, next: 0 };
        d.items.shuffle(rng);
        d
    }

    /// Items in their given order (a benchmark harness walks a dataset in order).
    pub(crate) fn ordered(items: Vec<u32>) -> Self {
        Deck { items, next: 0 }
    }

    pub(crate) fn draw(&mut self, rng: &mut StdRng) -> u32 {
        if self.items.is_empty() {
            return 0;
        }
        if self.next == self.items.len() {
            self.items.shuffle(rng);
            self.next = 0;
        }
        self.next += 1;
        self.items[self.next - 1]
    }
}

/// Shared state while generating: the corpora, the period, the decks that keep different
/// accounts from reusing the same conversations, and the account ids handed out so far.
pub(crate) struct Ctx<'a> {
    pub(crate) corpora: &'a Corpora,
    pub(crate) window: Window,
    /// Per corpus, a deck of conversation indices (human traffic).
    conv_decks: BTreeMap<CorpusId, Deck>,
    /// Per corpus, a deck of row indices (documents, tasks).
    row_decks: BTreeMap<CorpusId, Deck>,
    ids: HashSet<String>,
    account_prefix: String,
    pub(crate) phrasings: Phrasings,
    /// Campaigns randomise their strategy, people their share of task items
    /// (`SimOptions::randomise`).
    pub(crate) randomise: bool,
    /// `SimOptions::honest_task_share`.
    pub(crate) honest_task_share: f64,
    /// `SimOptions::people_prompting`.
    pub(crate) people_prompting: f64,
    /// `SimOptions::wide_people`.
    pub(crate) wide_people: bool,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(corpora: &'a Corpora, window: Window) -> Self {
        Ctx {
            corpora,
            window,
            conv_decks: BTreeMap::new(),
            row_decks: BTreeMap::new(),
            ids: HashSet::new(),
            account_prefix: "acct".into(),
            phrasings: Phrasings::All,
            randomise: false,
            honest_task_share: 0.0,
            people_prompting: 0.0,
            wide_people: false,
        }
    }

    /// A fresh, unique account id that says nothing about the account.
    pub(crate) fn account_id(&mut self, rng: &mut StdRng) -> String {
        loop {
            let id = format!(
                "{}-{:010x}",
                self.account_prefix,
                rng.random::<u64>() & 0xff_ffff_ffff
            );
            if self.ids.insert(id.clone()) {
                return id;
            }
        }
    }

    /// Next conversation (index into `convs`) of a human corpus.
    pub(crate) fn draw_conv(&mut self, rng: &mut StdRng, id: CorpusId) -> u32 {
        let corpora = self.corpora;
        self.conv_decks
            .entry(id)
            .or_insert_with(|| Deck::new((0..corpora.get(id).convs.len() as u32).collect(), rng))
            .draw(rng)
    }

    /// Next row of a corpus.
    pub(crate) fn draw_row(&mut self, rng: &mut StdRng, id: CorpusId) -> u32 {
        let corpora = self.corpora;
        self.row_decks
            .entry(id)
            .or_insert_with(|| Deck::new((0..corpora.get(id).texts.len() as u32).collect(), rng))
            .draw(rng)
    }
}

/// A random conversation id.
pub(crate) fn conversation_id(rng: &mut StdRng) -> Rc<str> {
    Rc::from(format!("conv-{:016x}", rng.random::<u64>()))
}

/// Generate every account: the benign plan (its kinds allowed by `--kinds`) split over
/// `benign_accounts`, then `campaigns` campaigns cycling over the allowed extraction kinds.
/// `corpora` is already sliced (`--slice`). Each unit (person, business, campaign) gets its own
/// RNG seeded from the master, so that how many draws one unit makes does not change the timing
/// and wording of the next; only the shared decks (which conversation or document comes next)
/// couple them.
pub(crate) fn generate(corpora: &Corpora, opts: &SimOptions) -> Vec<Account> {
    let mut master = StdRng::seed_from_u64(opts.seed);
    let mut cx = Ctx::new(corpora, Window::new(opts.start_ms, opts.days));
    cx.account_prefix = opts.account_prefix.clone();
    cx.phrasings = opts.phrasings;
    cx.randomise = opts.randomise;
    cx.honest_task_share = opts.honest_task_share;
    cx.people_prompting = opts.people_prompting;
    cx.wide_people = opts.wide_people;
    let mut out = Vec::new();

    let plan: Vec<(Box<dyn Strategy>, f64)> = benign_plan()
        .into_iter()
        .filter(|(s, _)| opts.allows(s.kind()))
        .collect();
    let shares: Vec<f64> = plan.iter().map(|p| p.1).collect();
    for ((strategy, _), target) in plan.iter().zip(split(opts.benign_accounts, &shares)) {
        let mut made = 0;
        while made < target {
            let mut rng = StdRng::seed_from_u64(master.random());
            let accounts = strategy.generate(&mut cx, &mut rng, target - made);
            if accounts.is_empty() {
                break;
            }
            made += accounts.len();
            out.extend(accounts);
        }
    }

    let plan: Vec<Box<dyn Strategy>> = extraction_plan()
        .into_iter()
        .chain(
            campaign::probes()
                .into_iter()
                .map(|c| Box::new(c) as Box<dyn Strategy>),
        )
        .filter(|s| opts.allows(s.kind()))
        .collect();
    let campaigns = if plan.is_empty() { 0 } else { opts.campaigns };
    for i in 0..campaigns {
        let strategy = &plan[i % plan.len()];
        let mut rng = StdRng::seed_from_u64(master.random());
        let id = format!("{}-{:03}", opts.campaign_prefix, i + 1);
        for mut a in strategy.generate(&mut cx, &mut rng, usize::MAX) {
            a.campaign = Some(id.clone());
            out.push(a);
        }
    }
    if opts.task_endpoint > 0 {
        out.extend(endpoint::task_endpoint(
            &mut cx,
            opts.seed,
            opts.task_endpoint,
            opts.endpoint_task,
        ));
    }
    out.retain(|a| !a.requests.is_empty());
    churn::apply(&mut out, opts.seed, opts.address_churn);
    out
}

/// Split `n` by `shares` (largest remainder), giving every share at least one when `n` allows.
fn split(n: usize, shares: &[f64]) -> Vec<usize> {
    if shares.is_empty() {
        return Vec::new();
    }
    let total: f64 = shares.iter().sum();
    let exact: Vec<f64> = shares.iter().map(|s| n as f64 * s / total).collect();
    let mut out: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    if n >= shares.len() {
        for o in out.iter_mut() {
            *o = (*o).max(1);
        }
    }
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut i = 0;
    while out.iter().sum::<usize>() < n {
        out[order[i % order.len()]] += 1;
        i += 1;
    }
    while out.iter().sum::<usize>() > n {
        // Taken from the largest share.
        if let Some(j) = (0..out.len()).max_by_key(|&j| (out[j], usize::MAX - j)) {
            out[j] -= 1;
        }
    }
    out
}

fn stats(accounts: &[Account]) -> SimStats {
    let mut s = SimStats {
        first_ms: i64::MAX,
        last_ms: i64::MIN,
        ..SimStats::default()
    };
    let mut campaigns = HashSet::new();
    for a in accounts {
        s.accounts += 1;
        if a.label == 1 {
            s.extraction += 1;
        } else {
            s.benign += 1;
        }
        if let Some(c) = &a.campaign {
            campaigns.insert(c.as_str());
        }
        s.requests += a.requests.len();
        let k = s.kinds.entry(a.kind.to_string()).or_default();
        k.label = a.label;
        k.accounts += 1;
        k.requests += a.requests.len();
        for r in &a.requests {
            s.first_ms = s.first_ms.min(r.ts);
            s.last_ms = s.last_ms.max(r.ts);
        }
    }
    s.campaigns = campaigns.len();
    if s.requests == 0 {
        s.first_ms = 0;
        s.last_ms = 0;
    }
    s
}

// ---- writing -------------------------------------------------------------------------------

/// One request-log line, fields in contract order.
#[derive(Serialize)]
struct TrafficLine<'a> {
    account_id: &'a str,
    timestamp: String,
    prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_prompt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
}

#[derive(Serialize)]
struct LabelLine<'a> {
    account_id: &'a str,
    label: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign: Option<&'a str>,
    kind: &'a str,
}

/// RFC 3339 in UTC with milliseconds, e.g. `2025-06-02T08:13:22.123Z`.
pub(crate) fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Write to `path.partial`, then rename, so a failed run leaves no file that looks complete.
fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).at(&tmp)?);
    body(&mut w).at(&tmp)?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

fn write_traffic(path: &Path, accounts: &[Account]) -> Result<()> {
    let mut order: Vec<(i64, u32, u32)> = accounts
        .iter()
        .enumerate()
        .flat_map(|(a, acc)| {
            acc.requests
                .iter()
                .enumerate()
                .map(move |(r, req)| (req.ts, a as u32, r as u32))
        })
        .collect();
    order.sort_unstable();
    write_atomic(path, |w| {
        for (_, a, r) in order {
            let acc = &accounts[a as usize];
            let req = &acc.requests[r as usize];
            let line = TrafficLine {
                account_id: &acc.id,
                timestamp: rfc3339(req.ts),
                prompt: &req.prompt,
                conversation_id: req.conversation_id.as_deref(),
                system_prompt: req.system_prompt.as_deref(),
                response_tokens: req.response_tokens,
                model: req.model,
                ip: req.ip.as_deref(),
                user_agent: req.user_agent,
            };
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

fn write_labels(path: &Path, accounts: &[Account]) -> Result<()> {
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    write_atomic(path, |w| {
        for a in sorted {
            let line = LabelLine {
                account_id: &a.id,
                label: a.label,
                campaign: a.campaign.as_deref(),
                kind: a.kind,
            };
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
