//! Flags of `distillguard simulate`, mapped one to one onto the simulator's [`SimOptions`].

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use distillguard::error::Result;
use distillguard::simulate::{
    bundled_corpora_dir, parse_slice, parse_start, simulate, EndpointTask, Phrasings, SimOptions,
    DEFAULT_START,
};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Extra folder of prompt corpora (*.jsonl, see data/corpora/README.md), searched before
    /// the bundled data/corpora; repeatable. Adds the optional, unshippable corpora (ShareGPT,
    /// LIMA, ...) where you have them; without it their bundled stand-ins are used.
    #[arg(long, value_name = "DIR")]
    pub corpora: Vec<PathBuf>,
    /// Request log to write (JSONL, sorted by timestamp).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Labels to write (JSONL, one line per account).
    #[arg(long, value_name = "FILE")]
    pub labels: PathBuf,
    /// Random seed; the same seed and corpora give byte-identical output.
    #[arg(long, value_name = "N")]
    pub seed: u64,
    /// Benign accounts (campaign accounts come on top).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub accounts: usize,
    /// Extraction campaigns (11 covers every campaign kind once).
    #[arg(long, default_value_t = 11, value_name = "N")]
    pub campaigns: usize,
    /// Length of the simulated period in days.
    #[arg(long, default_value_t = 7, value_name = "N")]
    pub days: u32,
    /// Start of the period (RFC 3339).
    #[arg(long, default_value = DEFAULT_START, value_name = "RFC3339", value_parser = parse_start)]
    pub start: i64,
    /// Only these strategy kinds, comma-separated, as written in labels' "kind" (e.g.
    /// benign_human,bulk_business,hydra_cot). Benign accounts go to the allowed benign kinds in
    /// their usual proportions; campaigns cycle over the allowed extraction kinds.
    #[arg(long, value_name = "KIND,...", value_delimiter = ',')]
    pub kinds: Option<Vec<String>>,
    /// Only the corpus items (conversations, task-set rows) in slice I of N, by a stable hash
    /// of their text; the slices of one N are disjoint and cover the corpora (held-out splits).
    #[arg(long, value_name = "I/N", value_parser = parse_slice)]
    pub slice: Option<(u32, u32)>,
    /// Campaign ids are PREFIX-001, PREFIX-002, ... (to concatenate simulated files).
    #[arg(long, default_value = "camp", value_name = "PREFIX")]
    pub campaign_prefix: String,
    /// Account ids are PREFIX-<10 hex digits> (to concatenate simulated files).
    #[arg(long, default_value = "acct", value_name = "PREFIX")]
    pub account_prefix: String,
    /// Use only corpora whose license allows shipping their text (MIT, Apache-2.0, CC0); the
    /// others are replaced by a permissive corpus of the same kind. For committed examples.
    #[arg(long)]
    pub permissive_only: bool,
    /// Add a task endpoint (see --endpoint-task) with N students, N/4 accounts querying it
    /// with off-task prompts (100 each) and N/4 with 25% off-task prompts (kinds
    /// `endpoint_user`, `endpoint_extraction`, `endpoint_extraction_mixed`)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub task_endpoint: usize,
    /// What the task endpoint serves: math (word problems, model nova-tutor-math-1), quiz
    /// (general-knowledge questions, model nova-quiz-helper-1), code (beginner programming
    /// exercises, model nova-code-coach-1) or shell (Linux administration tasks, model
    /// nova-shell-helper-1)
    #[arg(long, value_enum, default_value_t = EndpointArg::Math)]
    pub endpoint_task: EndpointArg,
    /// Campaign wording bank: train (even-numbered wrappers), test (odd-numbered: wording a
    /// model trained on the train bank has never seen) or all
    #[arg(long, value_enum, default_value_t = PhrasingsArg::All)]
    pub phrasings: PhrasingsArg,
    /// Randomise each campaign's strategy around its kind: accounts (1-500), requests per
    /// account (3-1,000), cover traffic (0-60%), system prompt (shared, per account, none),
    /// network (datacenter subnets, residential, a shared proxy pool), pacing and task sets,
    /// and wrappers composed per campaign from parts (openers, instructions, format demands).
    /// What a kind asks for stays; how it goes about it does not, so that a model cannot learn
    /// one campaign's habits. People's share of task-set items is drawn per person in
    /// [0, 2F) around --honest-task-share F (at most 0.9).
    #[arg(long)]
    pub randomise: bool,
    /// Share of a person's conversations (honest accounts and campaigns' human cover) that are
    /// one item of a public task set, the items extractors sweep: people ask homework maths,
    /// coding exercises and trivia too. 0 keeps people to the chat corpora
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    pub honest_task_share: f64,
    /// Share of people (honest accounts and campaigns' human cover) who habitually add a
    /// reasoning, detail or format request to their questions ("Think step by step.", "Answer
    /// in bullet points."), as prompting guides teach, on 30-100% of their turns; the phrases
    /// follow --phrasings. 0 for none
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub people_prompting: f64,
    /// Draw people over a wider range: each person's mix of chat corpora scaled at random (one-off
    /// questions or long conversations) and twice --people-prompting's share with a habit (at
    /// most 0.9). Measured for the training week and not adopted (docs/evaluation.md).
    #[arg(long)]
    pub wide_people: bool,
    /// Share of people (honest personal accounts, heavy users, a task endpoint's students) who
    /// reach the API from changing networks: two in three a phone carrier (half their
    /// conversations from a fresh address in the carrier's /16), one in three a VPN (one to
    /// three exit addresses shared by every VPN user of the week). Prompts and times are
    /// unchanged by it. 0 for none
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub address_churn: f64,
    /// No summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--endpoint-task`: [`EndpointTask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EndpointArg {
    Math,
    Quiz,
    Code,
    Shell,
}

/// `--phrasings`: [`Phrasings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PhrasingsArg {
    All,
    Train,
    Test,
}

impl SimulateArgs {
    fn options(&self) -> SimOptions {
        SimOptions {
            corpora: self
                .corpora
                .iter()
                .cloned()
                .chain([bundled_corpora_dir()])
                .collect(),
            traffic: self.out.clone(),
            labels: self.labels.clone(),
            seed: self.seed,
            benign_accounts: self.accounts,
            campaigns: self.campaigns,
            days: self.days,
            start_ms: self.start,
            kinds: self.kinds.as_ref().map(|ks| {
                ks.iter()
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            }),
            slice: self.slice,
            campaign_prefix: self.campaign_prefix.clone(),
            account_prefix: self.account_prefix.clone(),
            permissive_only: self.permissive_only,
            task_endpoint: self.task_endpoint,
            endpoint_task: match self.endpoint_task {
                EndpointArg::Math => EndpointTask::Math,
                EndpointArg::Quiz => EndpointTask::Quiz,
                EndpointArg::Code => EndpointTask::Code,
                EndpointArg::Shell => EndpointTask::Shell,
            },
            phrasings: match self.phrasings {
                PhrasingsArg::All => Phrasings::All,
                PhrasingsArg::Train => Phrasings::Train,
                PhrasingsArg::Test => Phrasings::Test,
            },
            randomise: self.randomise,
            honest_task_share: self.honest_task_share,
            people_prompting: self.people_prompting,
            wide_people: self.wide_people,
            address_churn: self.address_churn,
        }
    }

    /// Run the command: simulate, then a short summary on stderr.
    pub fn run(self) -> Result<()> {
        let opts = self.options();
        opts.validate()?;
        let t = Instant::now();
        let stats = simulate(&opts)?;
        if !self.quiet {
            eprintln!(
                "distillguard: simulated {} over {} days in {:.1}s; wrote {} and {}\n{}",
                stats.summary(),
                opts.days,
                t.elapsed().as_secs_f64(),
                opts.traffic.display(),
                opts.labels.display(),
                stats.kind_table()
            );
            if !stats.stood_in.is_empty() {
                let pairs: Vec<String> = stats
                    .stood_in
                    .iter()
                    .map(|(missing, stand_in)| format!("{missing} -> {stand_in}"))
                    .collect();
                eprintln!(
                    "  stand-ins for optional corpora (not found, or --permissive-only; add \
                     them with --corpora DIR): {}",
                    pairs.join(", ")
                );
            }
        }
        Ok(())
    }
}
