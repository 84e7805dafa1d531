//! Extraction strategies: one parameterised [`Campaign`] and its presets.
//!
//! Every campaign does the same three things, differently tuned: it sweeps task sets the way a
//! dataset is built (each item once, or a few samples of each), it words each item with
//! wrappers that ask for what the extractor wants (reasoning traces, long answers, grades,
//! code), and it spreads the work over accounts so that each stays small. The presets cover
//! what public reports describe:
//!
//! | kind | accounts | what it sends | how |
//! |---|---|---|---|
//! | `hydra_cot` | 40-160 | reasoning sets in CoT wrappers, 2-4 languages | one queue load-balanced over rate-limited accounts, datacenter subnets |
//! | `cot_multilingual` | 6-24 | instructions + reasoning, each account in its own language | load-balanced, rotating residential proxies |
//! | `rubric_grading` | 8-30 | "grade this answer 1-10 against this rubric" over task/answer pairs | load-balanced, short answers |
//! | `coding_sweep` | 4-16 | HumanEval + MBPP, several samples each, shared system prompt | load-balanced |
//! | `agentic_sweep` | 5-20 | tool-calling conversations + OS-agent tasks, shared tool spec | load-balanced, multi-turn |
//! | `low_and_slow` | 10-35 | every task set, a few a day, plain or lightly wrapped | human-like daytime over the whole period |
//! | `mixed_cover` | 6-20 | data-generation prompts + replayed human conversations | scripted bursts among human sessions |
//! | `single_heavy` | 1 | everything, 800-2500 requests | one account, steady |
//! | `agent_sybil_cover` | 10-40 | tool-use + OS-agent tasks, one system prompt, 20-30% chat copied in | load-balanced at machine-regular pace, datacenter subnets |
//! | `thin_wrappers` | 150-400 | ~12 requests each: generic "answer thoroughly" wrappers around writing and benchmark items | load-balanced, rotating residential proxies |
//! | `cot_varied_tasks` | 8-30 | CoT wrappers around varied benchmark and coding tasks | load-balanced, rotating residential proxies |
//! | `self_instruct` | 5-25 | seed tasks expanded into new tasks with answers | load-balanced, datacenter |
//! | `trace_language` | 10-40 | full reasoning demanded in the question's language, one language per account | load-balanced, rotating residential proxies |
//! | `policy_alternatives` | 6-20 | sensitive questions rewritten into policy-safe ones, answered | load-balanced, datacenter |
//! | `best_of_n` | 4-16 | every item 3-8 times (rejection sampling) | load-balanced, datacenter |
//! | `router_resale` | 2-6 | everything, 150-1,000 requests, 35-55% real customers' chats | a reseller's gateway: one /24, many clients |
//! | `paraphrase_rotation` | 20-80 | CoT and detail wording assembled afresh per request | load-balanced, rotating residential proxies |
//!
//! `simulate --randomise` draws each campaign's accounts, volumes, cover, system prompt,
//! network, pacing, languages and wording anew around its kind ([`Campaign::randomised`]).
//!
//! To add a campaign kind, add a preset to [`presets`]; a new behaviour is a new variant of
//! [`Style`], [`Langs`], [`Schedule`] or [`Network`].
//!
//! A kind written against the detector after it was built, to see whether it is caught, is a
//! probe ([`probes`]): generated only when `--kinds` names it, so that no training traffic
//! holds it (`scripts/probe_eval.sh` measures each).

use std::borrow::Cow;
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::benign::{human_requests, Persona};
use super::client::{
    favourite_model, ip_in, pick, residential_ip, subnet, Client, PERSONAL_UAS, SDK_UAS,
};
use super::corpus::CorpusId;
use super::text::{
    campaign_system, compose, fill_rubric, synth_answer, task_text, wrap, Lang, SystemKind,
    Wrapper, AGENT_WRAPPERS, ALTERNATIVE_WRAPPERS, CODING_WRAPPERS, COT_WRAPPERS, DETAIL_WRAPPERS,
    FORMAT_DEMANDS, GENERATE_WRAPPERS, OPENERS, RUBRICS, RUBRIC_TEMPLATES, TRACE_WRAPPERS,
};
use super::timing::{
    count, load_balance, lognormal, secs, spread_daytime, time_zone, wave_arrivals, Chronotype,
    Rhythm, Slot, DAY, HOUR,
};
use super::{conversation_id, Account, Ctx, Deck, Origin, Phrasings, Req, Strategy};

/// How a task is worded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Chain-of-thought elicitation wrappers.
    Cot,
    /// "Give a long, high-quality answer" (training data generation).
    Detail,
    /// Reasoning-then-code wrappers (code task sets only; others fall back to `Cot`).
    Coding,
    /// The model as a reward model: grade a candidate answer against a rubric.
    Rubric,
    /// The task as it is.
    Plain,
    /// OS-agent wrappers, or a tool-calling conversation's turns as they are.
    Agent,
    /// Self-instruct: new tasks and answers modelled on the item.
    Generate,
    /// The full reasoning, in the language of the question.
    Trace,
    /// A policy-safe rewrite of the question, answered.
    Alternative,
}

/// Every style, in the order a campaign's wording is drawn.
const STYLES: [Style; 8] = [
    Style::Cot,
    Style::Detail,
    Style::Coding,
    Style::Rubric,
    Style::Agent,
    Style::Generate,
    Style::Trace,
    Style::Alternative,
];

impl Style {
    fn response(self) -> (f64, f64) {
        match self {
            Style::Cot => (900.0, 0.5),
            Style::Detail => (700.0, 0.5),
            Style::Coding => (650.0, 0.5),
            Style::Rubric => (8.0, 1.0),
            Style::Plain => (350.0, 0.7),
            Style::Agent => (280.0, 0.6),
            Style::Generate => (1400.0, 0.4),
            Style::Trace => (1000.0, 0.5),
            Style::Alternative => (600.0, 0.5),
        }
    }

    fn wrappers(self) -> &'static [Wrapper] {
        match self {
            Style::Cot => COT_WRAPPERS,
            Style::Detail | Style::Plain => DETAIL_WRAPPERS,
            Style::Coding => CODING_WRAPPERS,
            Style::Rubric => RUBRIC_TEMPLATES,
            Style::Agent => AGENT_WRAPPERS,
            Style::Generate => GENERATE_WRAPPERS,
            Style::Trace => TRACE_WRAPPERS,
            Style::Alternative => ALTERNATIVE_WRAPPERS,
        }
    }

    /// Whether wrappers of this style may be assembled with openers and format demands (a
    /// grader's "reply with only the number" or an agent's command format may not).
    fn composable(self) -> bool {
        !matches!(self, Style::Rubric | Style::Agent | Style::Plain)
    }
}

/// How a campaign's wording varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wording {
    /// A subset of its style's wrappers, used as they are.
    Fixed,
    /// Wrappers assembled once per campaign from parts ([`compose`]).
    Composed,
    /// A fresh assembly for every request: no two prompts need share a template.
    PerRequest,
}

/// Which languages a campaign's wrappers are in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Langs {
    English,
    /// English plus between `.0 - 1` and `.1 - 1` other languages, shared by all accounts.
    Several(usize, usize),
    /// Each account mostly in one language of its own.
    PerAccount,
}

/// When a campaign's requests happen.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schedule {
    /// One queue, in waves, spread over all accounts under per-account rate limits.
    LoadBalanced {
        days: (f64, f64),
        waves: (usize, usize),
        gap_s: (f64, f64),
    },
    /// Each account sends its tasks at human-like daytime moments over the whole period.
    Daytime,
    /// Each account runs its tasks in short scripted bursts at its local daytime.
    Bursts {
        per_burst: (usize, usize),
        gap_s: (f64, f64),
    },
}

/// Where a campaign's requests come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Network {
    /// A few datacenter /24s shared by the campaign's accounts.
    Datacenter { subnets: (usize, usize) },
    /// Rotating residential proxies.
    Residential,
    /// Sticky residential proxies: each account keeps one or two residential addresses all
    /// week, as a person does (only the probes use it).
    StickyResidential,
    /// A pool of residential exit addresses (size range) that every account draws from.
    ProxyPool { size: (usize, usize) },
    /// A reseller's gateway: one datacenter /24, and its own customers' several clients per
    /// account.
    Router,
}

/// An extraction campaign kind.
#[derive(Debug, Clone)]
pub(crate) struct Campaign {
    pub(crate) kind: &'static str,
    /// Number of accounts (inclusive range).
    pub(crate) accounts: (usize, usize),
    /// Extraction requests per account: log-normal median and shape, clamped to `.2..=.3`.
    pub(crate) quota: (f64, f64, usize, usize),
    /// Task sets and their weights.
    pub(crate) tasks: Cow<'static, [(CorpusId, f64)]>,
    pub(crate) styles: &'static [(Style, f64)],
    pub(crate) langs: Langs,
    /// Probability that all accounts share one system prompt, and what kind.
    pub(crate) system: (f64, SystemKind),
    /// Each account draws a system prompt of its own (with the probability above) instead.
    pub(crate) system_per_account: bool,
    pub(crate) wording: Wording,
    pub(crate) schedule: Schedule,
    pub(crate) network: Network,
    /// Fraction (range) of each account's requests that are replayed human conversations.
    pub(crate) human_mix: (f64, f64),
    /// Times each task is sent (inclusive range): several samples per coding task.
    pub(crate) samples: (usize, usize),
}

/// Every task set, for the kinds that sweep all of them.
const ALL_TASKS: &[(CorpusId, f64)] = &[
    (CorpusId::Gsm8k, 1.0),
    (CorpusId::ZeroShotCot, 1.0),
    (CorpusId::HumanEval, 0.6),
    (CorpusId::Mbpp, 1.0),
    (CorpusId::TruthfulQa, 1.0),
    (CorpusId::AlpacaEn, 1.0),
    (CorpusId::AlpacaSeed, 0.6),
    (CorpusId::DistillMeta, 0.3),
    (CorpusId::IdentityProbes, 0.3),
    (CorpusId::GlaiveToolcall, 0.8),
    (CorpusId::AgentbenchOs, 0.5),
];

/// The campaign kinds, in the order campaigns are drawn.
pub(crate) fn presets() -> Vec<Campaign> {
    use CorpusId::*;
    vec![
        Campaign {
            kind: "hydra_cot",
            accounts: (40, 160),
            quota: (20.0, 0.6, 6, 90),
            tasks: Cow::Borrowed(&[
                (Gsm8k, 0.35),
                (ZeroShotCot, 0.3),
                (TruthfulQa, 0.1),
                (AlpacaEn, 0.2),
                (AlpacaSeed, 0.05),
            ]),
            styles: &[(Style::Cot, 0.85), (Style::Plain, 0.15)],
            langs: Langs::Several(2, 4),
            system: (0.5, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (1.5, 4.0),
                waves: (2, 6),
                gap_s: (20.0, 90.0),
            },
            network: Network::Datacenter { subnets: (3, 12) },
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        Campaign {
            kind: "cot_multilingual",
            accounts: (6, 24),
            quota: (30.0, 0.7, 8, 150),
            tasks: Cow::Borrowed(&[
                (AlpacaEn, 0.3),
                (AlpacaSeed, 0.1),
                (Gsm8k, 0.25),
                (ZeroShotCot, 0.2),
                (TruthfulQa, 0.15),
            ]),
            styles: &[(Style::Cot, 0.8), (Style::Detail, 0.2)],
            langs: Langs::PerAccount,
            system: (0.3, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (3.0, 6.0),
                waves: (4, 10),
                gap_s: (30.0, 180.0),
            },
            network: Network::Residential,
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        Campaign {
            kind: "rubric_grading",
            accounts: (8, 30),
            quota: (35.0, 0.6, 10, 150),
            tasks: Cow::Borrowed(&[
                (AlpacaEn, 0.35),
                (Gsm8k, 0.25),
                (TruthfulQa, 0.15),
                (Mbpp, 0.15),
                (AlpacaSeed, 0.1),
            ]),
            styles: &[(Style::Rubric, 1.0)],
            langs: Langs::Several(1, 3),
            system: (0.6, SystemKind::Judge),
            schedule: Schedule::LoadBalanced {
                days: (1.0, 3.0),
                waves: (2, 5),
                gap_s: (10.0, 60.0),
            },
            network: Network::Datacenter { subnets: (2, 6) },
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        Campaign {
            kind: "coding_sweep",
            accounts: (4, 16),
            quota: (30.0, 0.6, 8, 120),
            tasks: Cow::Borrowed(&[(HumanEval, 0.35), (Mbpp, 0.65)]),
            styles: &[(Style::Coding, 1.0)],
            langs: Langs::Several(1, 3),
            system: (1.0, SystemKind::Code),
            schedule: Schedule::LoadBalanced {
                days: (1.0, 3.0),
                waves: (2, 5),
                gap_s: (20.0, 120.0),
            },
            network: Network::Datacenter { subnets: (1, 4) },
            human_mix: (0.0, 0.0),
            samples: (1, 3),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        Campaign {
            kind: "agentic_sweep",
            accounts: (5, 20),
            quota: (20.0, 0.6, 5, 80),
            tasks: Cow::Borrowed(&[(GlaiveToolcall, 0.6), (AgentbenchOs, 0.4)]),
            styles: &[(Style::Agent, 1.0)],
            langs: Langs::English,
            system: (1.0, SystemKind::Agent),
            schedule: Schedule::LoadBalanced {
                days: (1.0, 4.0),
                waves: (2, 6),
                gap_s: (15.0, 90.0),
            },
            network: Network::Datacenter { subnets: (2, 8) },
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        Campaign {
            kind: "low_and_slow",
            accounts: (10, 35),
            quota: (18.0, 0.5, 8, 45),
            tasks: Cow::Borrowed(ALL_TASKS),
            styles: &[(Style::Plain, 0.5), (Style::Cot, 0.3), (Style::Detail, 0.2)],
            langs: Langs::English,
            system: (0.0, SystemKind::Cot),
            schedule: Schedule::Daytime,
            network: Network::Residential,
            human_mix: (0.0, 0.15),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        Campaign {
            kind: "mixed_cover",
            accounts: (6, 20),
            quota: (25.0, 0.6, 8, 100),
            tasks: Cow::Borrowed(&[
                (DistillMeta, 0.1),
                (AlpacaSeed, 0.15),
                (AlpacaEn, 0.35),
                (IdentityProbes, 0.1),
                (Gsm8k, 0.15),
                (TruthfulQa, 0.15),
            ]),
            styles: &[(Style::Detail, 0.6), (Style::Cot, 0.4)],
            langs: Langs::Several(1, 2),
            system: (0.0, SystemKind::Cot),
            schedule: Schedule::Bursts {
                per_burst: (5, 25),
                gap_s: (4.0, 20.0),
            },
            network: Network::Residential,
            human_mix: (0.3, 0.6),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        Campaign {
            kind: "single_heavy",
            accounts: (1, 1),
            quota: (1500.0, 0.3, 800, 2500),
            tasks: Cow::Borrowed(ALL_TASKS),
            styles: &[
                (Style::Cot, 0.5),
                (Style::Detail, 0.2),
                (Style::Coding, 0.15),
                (Style::Rubric, 0.15),
            ],
            langs: Langs::Several(1, 3),
            system: (0.5, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (2.0, 6.0),
                waves: (4, 12),
                gap_s: (3.0, 15.0),
            },
            network: Network::Datacenter { subnets: (1, 1) },
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // The failure types of an independent evaluation (issue 9), each a kind of its own.
        // A sybil group under one system prompt at machine-regular pace, sweeping tool-use and
        // agent tasks, a quarter of its requests copied from ordinary chat.
        Campaign {
            kind: "agent_sybil_cover",
            accounts: (10, 40),
            quota: (25.0, 0.5, 8, 80),
            tasks: Cow::Borrowed(&[(GlaiveToolcall, 0.6), (AgentbenchOs, 0.4)]),
            styles: &[(Style::Agent, 1.0)],
            langs: Langs::English,
            system: (1.0, SystemKind::Agent),
            schedule: Schedule::LoadBalanced {
                days: (2.0, 5.0),
                waves: (3, 8),
                gap_s: (30.0, 36.0),
            },
            network: Network::Datacenter { subnets: (1, 3) },
            human_mix: (0.2, 0.3),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // A thin campaign: very many accounts of about a dozen requests, a few generic
        // "answer thoroughly" wrappers around varied writing and benchmark items, rotating
        // residential proxies: no account stands out, only the group gives them away.
        Campaign {
            kind: "thin_wrappers",
            accounts: (150, 400),
            quota: (12.0, 0.3, 6, 20),
            tasks: Cow::Borrowed(&[
                (AlpacaEn, 0.3),
                (AlpacaSeed, 0.1),
                (Gsm8k, 0.25),
                (TruthfulQa, 0.2),
                (HumanEval, 0.15),
            ]),
            styles: &[(Style::Detail, 1.0)],
            langs: Langs::English,
            system: (0.0, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (2.0, 6.0),
                waves: (3, 8),
                gap_s: (30.0, 120.0),
            },
            network: Network::Residential,
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // Chain-of-thought elicitation around varied benchmark and software tasks, each
        // account sweeping other items: alike in form, not in topic.
        Campaign {
            kind: "cot_varied_tasks",
            accounts: (8, 30),
            quota: (25.0, 0.6, 8, 100),
            tasks: Cow::Borrowed(&[
                (Gsm8k, 0.2),
                (ZeroShotCot, 0.15),
                (HumanEval, 0.15),
                (Mbpp, 0.2),
                (TruthfulQa, 0.15),
                (AgentbenchOs, 0.15),
            ]),
            styles: &[(Style::Cot, 1.0)],
            langs: Langs::Several(1, 2),
            system: (0.3, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (1.5, 5.0),
                waves: (2, 6),
                gap_s: (15.0, 90.0),
            },
            network: Network::Residential,
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // Later styles, from the public 2025-2026 record (docs/evaluation.md lists the sources).
        // Self-instruct data generation: seed tasks expanded into new tasks with answers.
        Campaign {
            kind: "self_instruct",
            accounts: (5, 25),
            quota: (30.0, 0.6, 8, 120),
            tasks: Cow::Borrowed(&[
                (AlpacaSeed, 0.4),
                (AlpacaEn, 0.4),
                (Gsm8k, 0.1),
                (Mbpp, 0.1),
            ]),
            styles: &[(Style::Generate, 1.0)],
            langs: Langs::Several(1, 2),
            system: (0.4, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (1.0, 4.0),
                waves: (2, 6),
                gap_s: (20.0, 120.0),
            },
            network: Network::Datacenter { subnets: (1, 4) },
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // Reasoning traces coerced into the question's language (GTIG, February 2026): each
        // account asks in its own language.
        Campaign {
            kind: "trace_language",
            accounts: (10, 40),
            quota: (25.0, 0.6, 8, 100),
            tasks: Cow::Borrowed(&[
                (Gsm8k, 0.3),
                (ZeroShotCot, 0.25),
                (AlpacaEn, 0.25),
                (TruthfulQa, 0.2),
            ]),
            styles: &[(Style::Trace, 1.0)],
            langs: Langs::PerAccount,
            system: (0.2, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (2.0, 6.0),
                waves: (3, 8),
                gap_s: (30.0, 150.0),
            },
            network: Network::Residential,
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // Policy-safe alternatives to sensitive questions (Anthropic, February 2026).
        Campaign {
            kind: "policy_alternatives",
            accounts: (6, 20),
            quota: (30.0, 0.6, 8, 120),
            tasks: Cow::Borrowed(&[(TruthfulQa, 0.5), (AlpacaEn, 0.3), (IdentityProbes, 0.2)]),
            styles: &[(Style::Alternative, 1.0)],
            langs: Langs::Several(1, 2),
            system: (0.5, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (1.0, 4.0),
                waves: (2, 6),
                gap_s: (15.0, 90.0),
            },
            network: Network::Datacenter { subnets: (1, 5) },
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // Best-of-n sampling: every item sent several times for rejection sampling.
        Campaign {
            kind: "best_of_n",
            accounts: (4, 16),
            quota: (40.0, 0.6, 10, 200),
            tasks: Cow::Borrowed(&[(Gsm8k, 0.3), (Mbpp, 0.2), (HumanEval, 0.2), (AlpacaEn, 0.3)]),
            styles: &[(Style::Detail, 0.5), (Style::Plain, 0.5)],
            langs: Langs::English,
            system: (0.5, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (1.0, 3.0),
                waves: (2, 5),
                gap_s: (5.0, 40.0),
            },
            network: Network::Datacenter { subnets: (1, 3) },
            human_mix: (0.0, 0.0),
            samples: (3, 8),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // Through a reseller (OpenAI's memo to Congress, February 2026, on access through
        // third-party routers): a few gateway accounts of very high volume whose real customers'
        // chats hide the extraction queue.
        Campaign {
            kind: "router_resale",
            accounts: (2, 6),
            quota: (400.0, 0.5, 150, 1000),
            tasks: Cow::Borrowed(ALL_TASKS),
            styles: &[
                (Style::Cot, 0.4),
                (Style::Detail, 0.3),
                (Style::Coding, 0.15),
                (Style::Plain, 0.15),
            ],
            langs: Langs::Several(1, 3),
            system: (0.0, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (4.0, 7.0),
                waves: (6, 14),
                gap_s: (2.0, 20.0),
            },
            network: Network::Router,
            human_mix: (0.35, 0.55),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Fixed,
        },
        // The adversary's next move against template signatures: every prompt freshly
        // assembled, no shared system prompt, rotating residential proxies, personal clients.
        Campaign {
            kind: "paraphrase_rotation",
            accounts: (20, 80),
            quota: (15.0, 0.5, 5, 40),
            tasks: Cow::Borrowed(&[
                (Gsm8k, 0.2),
                (ZeroShotCot, 0.15),
                (HumanEval, 0.1),
                (Mbpp, 0.15),
                (TruthfulQa, 0.15),
                (AlpacaEn, 0.25),
            ]),
            styles: &[(Style::Cot, 0.6), (Style::Detail, 0.4)],
            langs: Langs::English,
            system: (0.0, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (2.0, 6.0),
                waves: (3, 8),
                gap_s: (30.0, 150.0),
            },
            network: Network::Residential,
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::PerRequest,
        },
    ]
}

/// Probes: campaign kinds written against the detector *after* it was built, to see whether
/// it catches a move nobody trained it on. They are never generated unless `--kinds` names
/// them, so that no default traffic (and no model trained on it) contains them by accident,
/// and the draws of every other kind stay as they were.
pub(crate) fn probes() -> Vec<Campaign> {
    use CorpusId::*;
    // Drop every marker the detector reads: the benchmark item as it is (no wrapper, no
    // reasoning or length demand, no system prompt), a dozen requests per account, half of
    // them replayed human chats, at a person's daytime pace from residential addresses
    // with a person's mix of clients, over hundreds of accounts that share nothing. What
    // is left to an extractor's detector is the coverage of public task sets that the
    // accounts add up to.
    let plain_thin = Campaign {
        kind: "probe_plain_thin",
        accounts: (150, 300),
        quota: (6.0, 0.4, 3, 12),
        tasks: Cow::Borrowed(&[
            (Gsm8k, 1.0),
            (ZeroShotCot, 0.6),
            (HumanEval, 0.4),
            (Mbpp, 0.6),
            (TruthfulQa, 0.8),
            (AlpacaEn, 1.0),
            (AlpacaSeed, 0.5),
        ]),
        styles: &[(Style::Plain, 1.0)],
        langs: Langs::English,
        system: (0.0, SystemKind::Cot),
        schedule: Schedule::Daytime,
        network: Network::Residential,
        human_mix: (0.4, 0.6),
        samples: (1, 1),
        system_per_account: false,
        wording: Wording::Fixed,
    };
    // The next move against address churn (docs/evaluation.md, session 21): the same campaign
    // behind sticky residential sessions, each account on one or two addresses all week, as a
    // person is, so that no account's address ever changes.
    let sticky_thin = Campaign {
        kind: "probe_sticky_thin",
        network: Network::StickyResidential,
        ..plain_thin.clone()
    };
    vec![
        plain_thin,
        sticky_thin,
        // Share the form and nothing else: one reasoning wrapper assembled for the campaign
        // and used by every account, but a person's daytime pace, residential addresses and a
        // person's mix of clients, no system prompt. Linking needs a shared form *and* a
        // shared network, client build or system prompt, so this tests whether the wrapper
        // alone still gets the accounts caught and grouped.
        Campaign {
            kind: "probe_form_only",
            accounts: (20, 60),
            quota: (20.0, 0.5, 8, 40),
            tasks: Cow::Borrowed(&[
                (Gsm8k, 0.25),
                (ZeroShotCot, 0.15),
                (HumanEval, 0.1),
                (Mbpp, 0.15),
                (TruthfulQa, 0.15),
                (AlpacaEn, 0.2),
            ]),
            styles: &[(Style::Cot, 1.0)],
            langs: Langs::English,
            system: (0.0, SystemKind::Cot),
            schedule: Schedule::Daytime,
            network: Network::Residential,
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Composed,
        },
        // Ask what honest users ask: every other kind (and every randomised training
        // campaign) sweeps public task sets, which no honest account of the simulator but the
        // benchmark and tutoring kinds draws from, so a model may have learnt the *topic* of
        // task sets. This campaign keeps an extractor's usual form (reasoning and detail
        // wrappers assembled per campaign, load-balanced pacing from a proxy pool) but takes
        // its prompts from the human chat corpora the honest personas draw from.
        Campaign {
            kind: "probe_chat_topics",
            accounts: (30, 120),
            quota: (20.0, 0.5, 8, 60),
            tasks: Cow::Borrowed(&[
                (ShareGpt, 0.4),
                (Lima, 0.15),
                (ArenaHard, 0.25),
                (HhRlhf, 0.1),
                (Oasst1Zh, 0.1),
            ]),
            styles: &[(Style::Cot, 0.6), (Style::Detail, 0.4)],
            langs: Langs::English,
            system: (0.0, SystemKind::Cot),
            schedule: Schedule::LoadBalanced {
                days: (2.0, 6.0),
                waves: (3, 8),
                gap_s: (30.0, 150.0),
            },
            network: Network::ProxyPool { size: (20, 200) },
            human_mix: (0.0, 0.0),
            samples: (1, 1),
            system_per_account: false,
            wording: Wording::Composed,
        },
    ]
}

/// Whether `kind` is one of the [`probes`].
pub(crate) fn is_probe(kind: &str) -> bool {
    probes().iter().any(|c| c.kind == kind)
}

/// One task (or one sample of it) before it is worded for an account.
struct Unit {
    corpus: CorpusId,
    /// Raw turn texts (several for a tool-calling conversation).
    turns: Vec<String>,
    /// The corpus row of each turn (tests check slices through it).
    rows: Vec<u32>,
    /// The corpus conversation, for a tool-calling conversation.
    conv: Option<u32>,
    style: Style,
    /// Milliseconds between consecutive turns.
    gaps: Vec<i64>,
}

impl Unit {
    fn duration(&self) -> i64 {
        self.gaps.iter().sum()
    }
}

/// Per-account state while wording and emitting.
struct Member {
    client: Client,
    langs: Vec<Lang>,
    quota: usize,
    tz: i32,
    chrono: Chronotype,
}

/// Everything fixed for one campaign run.
struct Plan {
    langs: Vec<Lang>,
    rubrics: Vec<&'static str>,
    /// Per style, the wording this campaign uses (wrappers, or assemblies of them).
    wrappers: Vec<(Style, Vec<(Lang, String)>)>,
    /// The bank's openers and format demands, for [`Wording::PerRequest`].
    openers: Vec<&'static str>,
    formats: Vec<&'static str>,
    fresh_conv: bool,
}

impl Campaign {
    fn style_for(&self, rng: &mut StdRng, corpus: CorpusId) -> Style {
        let code = matches!(corpus, CorpusId::HumanEval | CorpusId::Mbpp);
        match corpus {
            CorpusId::GlaiveToolcall | CorpusId::AgentbenchOs => return Style::Agent,
            CorpusId::IdentityProbes | CorpusId::DistillMeta => return Style::Plain,
            _ => {}
        }
        if code && self.styles.iter().any(|s| s.0 == Style::Coding) {
            return Style::Coding;
        }
        let w: Vec<f64> = self.styles.iter().map(|s| s.1).collect();
        match self.styles[super::timing::weighted(rng, &w)].0 {
            Style::Coding if !code => Style::Cot,
            Style::Agent => Style::Cot,
            s => s,
        }
    }

    fn plan(&self, rng: &mut StdRng, phrasings: Phrasings) -> Plan {
        let mut langs = vec![Lang::En];
        match self.langs {
            Langs::English => {}
            Langs::Several(lo, hi) => {
                let others: Vec<Lang> = Lang::ALL[1..].to_vec();
                let k = rng.random_range(lo.max(1)..=hi.max(lo.max(1))) - 1;
                langs.extend(others.choose_multiple(rng, k).copied());
            }
            Langs::PerAccount => langs = Lang::ALL.to_vec(),
        }
        let openers = phrasings.bank(OPENERS);
        let formats = phrasings.bank(FORMAT_DEMANDS);
        let wrappers = STYLES
            .into_iter()
            .map(|style| {
                let bank: Vec<Wrapper> = phrasings.bank(style.wrappers());
                let pool: Vec<Wrapper> = bank
                    .iter()
                    .copied()
                    .filter(|w| langs.contains(&w.0))
                    .collect();
                // Each campaign uses most, not all, of the shared wording, per language (the
                // bank's English wording for a language the bank has none in).
                let mut chosen = Vec::new();
                for lang in &langs {
                    let mut of_lang: Vec<Wrapper> =
                        pool.iter().copied().filter(|w| w.0 == *lang).collect();
                    if of_lang.is_empty() {
                        of_lang = bank.iter().copied().filter(|w| w.0 == Lang::En).collect();
                    }
                    let k = ((of_lang.len() as f64 * rng.random_range(0.5..0.9)).ceil() as usize)
                        .clamp(of_lang.len().min(2), of_lang.len());
                    chosen.extend(of_lang.choose_multiple(rng, k).copied());
                }
                let chosen: Vec<(Lang, String)> =
                    if self.wording == Wording::Composed && style.composable() {
                        // Twice as many assemblies as wrappers, each from a random one of them.
                        let mut out = Vec::with_capacity(chosen.len() * 2);
                        for _ in 0..chosen.len() * 2 {
                            if let Some(&w) = chosen.choose(rng) {
                                out.push(compose(rng, w, &openers, &formats));
                            }
                        }
                        out
                    } else {
                        chosen
                            .into_iter()
                            .map(|(l, t)| (l, t.to_string()))
                            .collect()
                    };
                (style, chosen)
            })
            .collect();
        let k = rng.random_range(3..=6);
        let rubrics = RUBRICS.choose_multiple(rng, k).copied().collect();
        Plan {
            langs,
            rubrics,
            wrappers,
            openers,
            formats,
            fresh_conv: rng.random_bool(0.5),
        }
    }

    /// Draw the campaign's task units, `total` of them.
    fn units(&self, cx: &Ctx<'_>, rng: &mut StdRng, total: usize) -> Vec<Unit> {
        let ordered = rng.random_bool(0.3);
        let mut decks: Vec<Deck> = self
            .tasks
            .iter()
            .map(|(id, _)| {
                let c = cx.corpora.get(*id);
                let n = if *id == CorpusId::GlaiveToolcall {
                    c.convs.len()
                } else {
                    c.texts.len()
                } as u32;
                if ordered {
                    // A dataset walked in order, from some offset.
                    let start = rng.random_range(0..n.max(1));
                    Deck::ordered((0..n).map(|i| (i + start) % n.max(1)).collect())
                } else {
                    Deck::new((0..n).collect(), rng)
                }
            })
            .collect();
        let w: Vec<f64> = self.tasks.iter().map(|t| t.1).collect();
        let mut out = Vec::with_capacity(total);
        while out.len() < total {
            let i = super::timing::weighted(rng, &w);
            let id = self.tasks[i].0;
            let corpus = cx.corpora.get(id);
            let item = decks[i].draw(rng);
            let rows: Vec<u32> = if id == CorpusId::GlaiveToolcall {
                corpus.convs[item as usize].clone()
            } else {
                vec![item]
            };
            let turns: Vec<String> = if id == CorpusId::GlaiveToolcall {
                rows.iter().map(|&r| corpus.text(r).to_string()).collect()
            } else {
                vec![task_text(rng, id, corpus.text(item))]
            };
            let samples = rng.random_range(self.samples.0..=self.samples.1.max(self.samples.0));
            for _ in 0..samples {
                let gaps = (1..turns.len())
                    .map(|_| secs(lognormal(rng, 8.0, 0.6), 1.0))
                    .collect();
                out.push(Unit {
                    corpus: id,
                    turns: turns.clone(),
                    rows: rows.clone(),
                    conv: (id == CorpusId::GlaiveToolcall).then_some(item),
                    style: self.style_for(rng, id),
                    gaps,
                });
            }
        }
        out.truncate(total);
        out
    }

    /// The prompts of one unit as `member` sends them.
    fn word(&self, rng: &mut StdRng, plan: &Plan, member: &Member, unit: &Unit) -> Vec<String> {
        if unit.corpus == CorpusId::GlaiveToolcall {
            return unit.turns.clone();
        }
        let task = &unit.turns[0];
        let pool: &[(Lang, String)] = plan
            .wrappers
            .iter()
            .find(|(s, _)| *s == unit.style)
            .map(|(_, w)| w.as_slice())
            .unwrap_or(&[]);
        let of_member: Vec<&(Lang, String)> = pool
            .iter()
            .filter(|w| member.langs.contains(&w.0))
            .collect();
        let chosen = if of_member.is_empty() {
            pool.choose(rng)
        } else {
            of_member.choose(rng).copied()
        };
        let template: (Lang, String) = match chosen {
            Some((lang, t)) if self.wording == Wording::PerRequest && unit.style.composable() => {
                compose(rng, (*lang, t), &plan.openers, &plan.formats)
            }
            Some((lang, t)) => (*lang, t.clone()),
            None => (Lang::En, "{task}".to_string()),
        };
        let template = (template.0, template.1.as_str());
        let prompt = match unit.style {
            Style::Plain => {
                if rng.random_bool(0.8) {
                    task.clone()
                } else {
                    wrap(rng, (Lang::En, "{task}"), task)
                }
            }
            Style::Rubric => {
                let answer = synth_answer(rng, unit.corpus, task);
                let answer2 = synth_answer(rng, unit.corpus, task);
                let rubric = plan.rubrics.choose(rng).copied().unwrap_or(RUBRICS[0]);
                fill_rubric(rng, template, task, &answer, &answer2, rubric)
            }
            _ => wrap(rng, template, task),
        };
        vec![prompt]
    }

    fn members(&self, rng: &mut StdRng, plan: &Plan, n: usize) -> Vec<Member> {
        let campaign_ua = pick(rng, SDK_UAS);
        let shared_ua = rng.random_range(0.6..0.95);
        let subnets: Vec<[u8; 3]> = match self.network {
            Network::Datacenter { subnets } => (0..rng
                .random_range(subnets.0..=subnets.1.max(subnets.0)))
                .map(|_| subnet(rng))
                .collect(),
            Network::Router => vec![subnet(rng)],
            Network::Residential | Network::StickyResidential | Network::ProxyPool { .. } => {
                Vec::new()
            }
        };
        let pool: Vec<Rc<str>> = match self.network {
            Network::ProxyPool { size } => (0..rng.random_range(size.0..=size.1.max(size.0)))
                .map(|_| Rc::from(residential_ip(rng)))
                .collect(),
            _ => Vec::new(),
        };
        let system: Option<Rc<str>> = (!self.system_per_account)
            .then(|| {
                rng.random_bool(self.system.0)
                    .then(|| Rc::from(campaign_system(rng, self.system.1)))
            })
            .flatten();
        let model_weights = [0.5, 0.05, 0.4, 0.05];
        let campaign_models = favourite_model(rng, &model_weights);
        let campaign_tz = time_zone(rng);
        let human_like = matches!(self.schedule, Schedule::Daytime | Schedule::Bursts { .. });
        (0..n)
            .map(|_| {
                let ips = if !pool.is_empty() {
                    pool.clone()
                } else if subnets.is_empty() {
                    (0..rng.random_range(1..=2))
                        .map(|_| Rc::from(residential_ip(rng)))
                        .collect()
                } else {
                    (0..rng.random_range(1..=2))
                        .map(|_| {
                            let net = *subnets.choose(rng).unwrap_or(&[45, 0, 0]);
                            Rc::from(ip_in(rng, net))
                        })
                        .collect()
                };
                let uas: Vec<&'static str> = if matches!(self.network, Network::Router) {
                    // The reseller's own customers' clients.
                    (0..rng.random_range(3..=6))
                        .map(|_| {
                            if rng.random_bool(0.5) {
                                pick(rng, PERSONAL_UAS)
                            } else {
                                pick(rng, SDK_UAS)
                            }
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let own_system: Option<Rc<str>> = if self.system_per_account {
                    rng.random_bool(self.system.0)
                        .then(|| Rc::from(campaign_system(rng, self.system.1)))
                } else {
                    system.clone()
                };
                let ua = if human_like {
                    if rng.random_bool(0.5) {
                        pick(rng, PERSONAL_UAS)
                    } else {
                        pick(rng, SDK_UAS)
                    }
                } else if rng.random_bool(shared_ua) {
                    campaign_ua
                } else {
                    pick(rng, SDK_UAS)
                };
                let langs = match self.langs {
                    Langs::PerAccount => {
                        let own = *plan.langs.choose(rng).unwrap_or(&Lang::En);
                        if own != Lang::En && rng.random_bool(0.3) {
                            vec![own, Lang::En]
                        } else {
                            vec![own]
                        }
                    }
                    _ => plan.langs.clone(),
                };
                Member {
                    client: Client {
                        ips,
                        rotate: if matches!(self.network, Network::Residential) {
                            0.6
                        } else {
                            0.0
                        },
                        uas: if uas.is_empty() { vec![ua] } else { uas },
                        models: if rng.random_bool(0.8) {
                            campaign_models.clone()
                        } else {
                            favourite_model(rng, &model_weights)
                        },
                        system: own_system,
                    },
                    langs,
                    quota: count(rng, self.quota.0, self.quota.1, self.quota.2, self.quota.3),
                    tz: if human_like && rng.random_bool(0.5) {
                        time_zone(rng)
                    } else {
                        campaign_tz
                    },
                    chrono: if human_like {
                        Chronotype::random(rng)
                    } else {
                        Chronotype::Office
                    },
                }
            })
            .collect()
    }

    /// Start time and account of every unit.
    fn schedule(
        &self,
        cx: &Ctx<'_>,
        rng: &mut StdRng,
        members: &[Member],
        units: &[Unit],
    ) -> Vec<(usize, i64)> {
        let w = cx.window;
        match self.schedule {
            Schedule::LoadBalanced { days, waves, gap_s } => {
                let dur = ((rng.random_range(days.0..=days.1) * DAY as f64) as i64)
                    .clamp(HOUR, w.len_ms());
                let t0 = w.start_ms + rng.random_range(0..=(w.len_ms() - dur));
                let waves = rng.random_range(waves.0..=waves.1.max(waves.0));
                let arrivals = wave_arrivals(rng, t0, t0 + dur, units.len(), waves);
                let durations: Vec<i64> = units.iter().map(Unit::duration).collect();
                let mut slots: Vec<Slot> = members
                    .iter()
                    .map(|m| {
                        let join = if rng.random_bool(0.5) {
                            t0
                        } else {
                            t0 + rng.random_range(0..=(dur as f64 * 0.7) as i64)
                        };
                        Slot {
                            join_ms: join,
                            quota: m.quota,
                            min_gap_ms: secs(rng.random_range(gap_s.0..=gap_s.1), 1.0),
                            free_at: join,
                        }
                    })
                    .collect();
                load_balance(rng, &arrivals, &durations, &mut slots)
            }
            Schedule::Daytime => {
                let mut out = Vec::with_capacity(units.len());
                for (i, m) in members.iter().enumerate() {
                    for t in spread_daytime(rng, &w, m.tz, m.chrono, m.quota, 0.5) {
                        out.push((i, t));
                    }
                }
                out
            }
            Schedule::Bursts { per_burst, gap_s } => {
                let mut out = Vec::with_capacity(units.len());
                for (i, m) in members.iter().enumerate() {
                    let mut left = m.quota;
                    let mut times = Vec::with_capacity(m.quota);
                    while left > 0 {
                        let k = rng
                            .random_range(per_burst.0..=per_burst.1.max(per_burst.0))
                            .min(left);
                        left -= k;
                        let mut t = spread_daytime(rng, &w, m.tz, m.chrono, 1, 0.4)[0];
                        let gap = rng.random_range(gap_s.0..=gap_s.1);
                        for _ in 0..k {
                            times.push(t);
                            t += secs(lognormal(rng, gap, 0.4), 1.0);
                        }
                    }
                    times.sort_unstable();
                    out.extend(times.into_iter().map(|t| (i, t)));
                }
                out
            }
        }
    }
}

impl Strategy for Campaign {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn label(&self) -> u8 {
        1
    }

    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, _max: usize) -> Vec<Account> {
        if cx.randomise {
            self.randomised(rng).run(cx, rng)
        } else {
            self.run(cx, rng)
        }
    }
}

impl Campaign {
    /// This kind with its strategy drawn at random (`simulate --randomise`): what it asks for
    /// (styles, and its own task sets, sometimes with others added) stays; how many accounts
    /// (1-500), how many requests each (3-1,000, from a campaign budget of 150-5,000), how much
    /// human cover (none half the time, else 5-60%), whose system prompt (shared, per account,
    /// none), which network, what pacing, which languages and how the wording varies are drawn
    /// anew per campaign.
    pub(crate) fn randomised(&self, rng: &mut StdRng) -> Campaign {
        let log_uniform = |rng: &mut StdRng, lo: f64, hi: f64| -> f64 {
            rng.random_range(lo.ln()..=hi.ln()).exp()
        };
        let mut c = self.clone();
        let budget = log_uniform(rng, 150.0, 5000.0);
        let wanted = log_uniform(rng, 1.0, 500.0).round().clamp(1.0, 500.0);
        let per = (budget / wanted).clamp(3.0, 1000.0);
        let n = ((budget / per).round() as usize).clamp(1, 500);
        c.accounts = (n, n);
        c.quota = (
            per,
            0.4,
            ((per / 3.0) as usize).max(3),
            ((per * 3.0) as usize).clamp(3, 1000),
        );
        if rng.random_bool(0.5) {
            let mut tasks = self.tasks.to_vec();
            for _ in 0..rng.random_range(1..=3) {
                if let Some(&(id, _)) = ALL_TASKS.choose(rng) {
                    if !tasks.iter().any(|t| t.0 == id) {
                        tasks.push((id, rng.random_range(0.1..0.5)));
                    }
                }
            }
            c.tasks = Cow::Owned(tasks);
        }
        c.human_mix = if rng.random_bool(0.5) {
            (0.0, 0.0)
        } else {
            let f = rng.random_range(0.05..0.6);
            (f * 0.8, f)
        };
        match rng.random_range(0..3) {
            0 => (c.system.0, c.system_per_account) = (1.0, false),
            1 => (c.system.0, c.system_per_account) = (1.0, true),
            _ => (c.system.0, c.system_per_account) = (0.0, false),
        }
        let keep_router = matches!(self.network, Network::Router) && rng.random_bool(0.5);
        if !keep_router {
            c.network = match rng.random_range(0..3) {
                0 => Network::Datacenter {
                    subnets: (1, rng.random_range(1..=12)),
                },
                1 => Network::Residential,
                _ => Network::ProxyPool {
                    size: (10, rng.random_range(20..=400)),
                },
            };
        }
        c.schedule = match rng.random_range(0..4) {
            0 | 1 => {
                let days = rng.random_range(0.5..4.0);
                let gap = log_uniform(rng, 2.0, 300.0);
                Schedule::LoadBalanced {
                    days: (days, (days * 2.0).min(7.0)),
                    waves: (rng.random_range(1..=4), rng.random_range(4..=12)),
                    gap_s: (gap, gap * 3.0),
                }
            }
            2 => Schedule::Daytime,
            _ => Schedule::Bursts {
                per_burst: (rng.random_range(3..=10), rng.random_range(10..=40)),
                gap_s: (rng.random_range(2.0..10.0), rng.random_range(10.0..40.0)),
            },
        };
        c.langs = match rng.random_range(0..3) {
            0 => Langs::English,
            1 => Langs::Several(1, rng.random_range(2..=4)),
            _ => Langs::PerAccount,
        };
        if self.wording != Wording::PerRequest {
            c.wording = if rng.random_bool(0.7) {
                Wording::Composed
            } else {
                Wording::PerRequest
            };
        }
        c
    }

    /// Generate the campaign as configured.
    fn run(&self, cx: &mut Ctx<'_>, rng: &mut StdRng) -> Vec<Account> {
        let n = rng.random_range(self.accounts.0..=self.accounts.1.max(self.accounts.0));
        let plan = self.plan(rng, cx.phrasings);
        let members = self.members(rng, &plan, n);
        let total: usize = members.iter().map(|m| m.quota).sum();
        let units = self.units(cx, rng, total);
        let assigned = self.schedule(cx, rng, &members, &units);

        let mut requests: Vec<Vec<Req>> = (0..members.len()).map(|_| Vec::new()).collect();
        for (unit, &(m, t0)) in units.iter().zip(&assigned) {
            let member = &members[m];
            let prompts = self.word(rng, &plan, member, unit);
            let cid = (prompts.len() > 1 || plan.fresh_conv).then(|| conversation_id(rng));
            let (median, sigma) = unit.style.response();
            let ip = member.client.ip(rng);
            let model = member.client.model(rng);
            let mut t = t0;
            for (i, prompt) in prompts.into_iter().enumerate() {
                if i > 0 {
                    t += unit.gaps.get(i - 1).copied().unwrap_or(5_000);
                }
                requests[m].push(Req {
                    ts: t,
                    prompt,
                    conversation_id: cid.clone(),
                    system_prompt: member.client.system.clone(),
                    response_tokens: Some((lognormal(rng, median, sigma) as u64).clamp(1, 8192)),
                    model: Some(model),
                    ip: Some(ip.clone()),
                    user_agent: Some(member.client.ua(rng)),
                    origin: unit.rows.get(i).map(|&row| Origin {
                        corpus: unit.corpus,
                        row,
                        conv: unit.conv,
                        pos: i as u32,
                    }),
                });
            }
        }

        // Cover traffic: real human conversations through the same key.
        if self.human_mix.1 > 0.0 {
            for (m, member) in members.iter().enumerate() {
                let f = rng.random_range(self.human_mix.0..=self.human_mix.1);
                let want = (member.quota as f64 * f / (1.0 - f).max(0.05)).round() as usize;
                if want == 0 {
                    continue;
                }
                let mut rhythm = Rhythm::casual(rng);
                rhythm.tz_min = member.tz;
                rhythm.chrono = member.chrono;
                let mut client = member.client.clone();
                client.system = None;
                let convs = want.div_ceil(3).max(1);
                let persona = Persona::random(rng);
                requests[m].extend(human_requests(
                    cx, rng, &rhythm, persona, false, &client, convs,
                ));
            }
        }

        let mut out = Vec::with_capacity(members.len());
        for mut reqs in requests {
            if reqs.is_empty() {
                continue;
            }
            reqs.sort_by_key(|r| r.ts);
            out.push(Account {
                id: cx.account_id(rng),
                kind: self.kind,
                label: 1,
                campaign: None,
                requests: reqs,
            });
        }
        out
    }
}
