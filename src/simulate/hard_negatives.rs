//! Benign workloads from the public record of legitimate heavy API use that share an
//! extractor's surface: step-by-step requests over benchmark-like items, shared system prompts,
//! shared addresses, machine pace.
//!
//! - `tutoring_platform`: an education app's backend key. Students paste homework (word
//!   problems, quiz and writing tasks) and ask for explanations step by step under the app's
//!   system prompt, from the app's servers, in school and evening hours; a class gets the same
//!   assignment, so items repeat, and students ask follow-ups. Step-by-step over GSM8K items is
//!   what the extractors send too; conversations, repeats and follow-ups are not.
//! - `enterprise_team`: a company's employees, each with an account, behind one corporate NAT,
//!   one internal tool and one system prompt, chatting as people do. Shared infrastructure and
//!   a shared system prompt without a shared task sweep.
//! - `coding_agent_user`: a developer driving a coding agent: a long product system prompt that
//!   every user of that product sends verbatim, a request followed by bursts of tool results at
//!   machine pace, in working hours.
//!
//! The other new hard negatives are variants of `benign`'s strategies: `eval_harness_cot`,
//! `red_team_eval` (`BenchmarkEval`) and `translation_pipeline` (`BulkBusiness`).

use std::rc::Rc;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::benign::{human_requests, Persona};
use super::client::{
    favourite_model, ip_in, pick, residential_ip, subnet, Client, MODEL_LARGE, MODEL_SMALL,
    PERSONAL_UAS, SDK_UAS,
};
use super::corpus::CorpusId;
use super::text::strip_zero_shot;
use super::timing::{
    count, daytime_events, lognormal, secs, spread_daytime, time_zone, Chronotype, Rhythm,
};
use super::{conversation_id, Account, Ctx, Origin, Req, Strategy};

const TUTOR_APPS: &[&str] = &[
    "You are StudyBuddy, a friendly tutor for middle and high school students. Always explain \
     your reasoning step by step and check understanding before moving on. Never just give the \
     final answer.",
    "You are the homework helper of BrightPath Learning. Guide the student through the problem \
     one step at a time, use simple language, and encourage them to try the next step.",
    "Tutor mode. Audience: students aged 11-17. Show every step of the working, explain why \
     each step is taken, and end with a short check question.",
];

/// How a student asks: `{q}` is the homework item.
const STUDENT_ASKS: &[&str] = &[
    "{q}",
    "{q}",
    "can you explain this step by step? {q}",
    "{q}\n\ni don't get how to do this, please explain",
    "help with my homework: {q}",
    "{q} show me the steps pls",
    "How do I solve this? {q}",
    "my teacher gave us this: {q}",
];

const STUDENT_FOLLOWUPS: &[&str] = &[
    "why did you do that in the second step?",
    "can you explain it a different way",
    "so is the answer right? i got something else",
    "ok that makes sense, thanks!",
    "wait i still don't understand the first part",
    "can you give me a similar one to practice?",
    "what formula is that",
    "thank you!! can you check my answer: I think it's 42",
];

/// `tutoring_platform`: see the module notes.
pub(crate) struct TutoringPlatform;

impl Strategy for TutoringPlatform {
    fn kind(&self) -> &'static str {
        "tutoring_platform"
    }

    fn label(&self) -> u8 {
        0
    }

    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, _max: usize) -> Vec<Account> {
        // The class assignments of the week: a pool of items that students share.
        let sources = [
            (CorpusId::Gsm8k, 0.6),
            (CorpusId::ZeroShotCot, 0.2),
            (CorpusId::AlpacaEn, 0.2),
        ];
        let w: Vec<f64> = sources.iter().map(|s| s.1).collect();
        let pool: Vec<(CorpusId, u32)> = (0..rng.random_range(20..=80))
            .map(|_| {
                let id = sources[super::timing::weighted(rng, &w)].0;
                (id, cx.draw_row(rng, id))
            })
            .collect();
        let tz = time_zone(rng);
        let chrono = if rng.random_bool(0.5) {
            Chronotype::Office
        } else {
            Chronotype::Evening
        };
        let per_day = lognormal(rng, 40.0, 0.5).clamp(10.0, 150.0);
        let w = cx.window;
        let mut events = daytime_events(rng, &w, tz, chrono, per_day, 0.5);
        if events.is_empty() {
            events = spread_daytime(rng, &w, tz, chrono, 1, 1.0);
        }
        let net = subnet(rng);
        let ua = pick(rng, SDK_UAS);
        let model = if rng.random_bool(0.6) {
            MODEL_SMALL
        } else {
            MODEL_LARGE
        };
        let mut client = Client::server(rng, net, ua, model);
        client.system = Some(Rc::from(pick(rng, TUTOR_APPS)));
        let mut requests = Vec::with_capacity(events.len() * 2);
        for t0 in events {
            let &(id, row) = pool.choose(rng).unwrap_or(&(CorpusId::Gsm8k, 0));
            let text = cx.corpora.get(id).text(row);
            let q = if id == CorpusId::ZeroShotCot {
                strip_zero_shot(text)
            } else {
                text.to_string()
            };
            let cid = conversation_id(rng);
            let ip = client.ip(rng);
            let ask = pick(rng, STUDENT_ASKS).replace("{q}", &q);
            let mut turns = vec![(t0, ask, Some(Origin::row(id, row)))];
            let mut t = t0;
            if rng.random_bool(0.55) {
                for _ in 0..rng.random_range(1..=3) {
                    t += secs(lognormal(rng, 60.0, 0.7), 8.0);
                    turns.push((t, pick(rng, STUDENT_FOLLOWUPS).to_string(), None));
                }
            }
            for (ts, prompt, origin) in turns {
                requests.push(Req {
                    ts,
                    prompt,
                    conversation_id: Some(cid.clone()),
                    system_prompt: client.system.clone(),
                    response_tokens: Some((lognormal(rng, 260.0, 0.5) as u64).clamp(1, 2048)),
                    model: Some(model),
                    ip: Some(ip.clone()),
                    user_agent: Some(ua),
                    origin,
                });
            }
        }
        vec![Account {
            id: cx.account_id(rng),
            kind: self.kind(),
            label: self.label(),
            campaign: None,
            requests,
        }]
    }
}

const COMPANY_ASSISTANTS: &[&str] = &[
    "You are the internal AI assistant of {company}. Be concise and professional. Do not share \
     confidential information outside the company.",
    "{company} Copilot. Help employees with writing, analysis and code. Follow the {company} \
     acceptable-use policy.",
    "You are an assistant for {company} staff. Answer clearly; when unsure, say so.",
];

const COMPANIES: &[&str] = &[
    "Helix Logistics",
    "Marrow & Finch",
    "Quanta Insurance",
    "Brightline Rail",
    "Oakridge Foods",
    "Vantage Biotech",
    "Cobalt Media",
    "Sierra Utilities",
];

/// `enterprise_team`: see the module notes.
pub(crate) struct EnterpriseTeam;

impl Strategy for EnterpriseTeam {
    fn kind(&self) -> &'static str {
        "enterprise_team"
    }

    fn label(&self) -> u8 {
        0
    }

    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, max: usize) -> Vec<Account> {
        let n = count(rng, 12.0, 0.6, 4, 40).min(max.max(1));
        let company = pick(rng, COMPANIES);
        let system: Rc<str> = Rc::from(pick(rng, COMPANY_ASSISTANTS).replace("{company}", company));
        let net = subnet(rng);
        let nat: Vec<Rc<str>> = (0..rng.random_range(1..=3))
            .map(|_| Rc::from(ip_in(rng, net)))
            .collect();
        let tool_ua = pick(
            rng,
            &[
                "InternalGPT/2.3 (python-httpx/0.27.0)",
                "company-chat-portal/1.8",
                "OpenAI/NodeJS 4.52.0",
            ],
        );
        let tz = time_zone(rng);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let heavy = rng.random_bool(0.3);
            let mut rhythm = if heavy {
                Rhythm::heavy(rng)
            } else {
                Rhythm::casual(rng)
            };
            rhythm.tz_min = tz;
            rhythm.chrono = Chronotype::Office;
            let persona = if rng.random_bool(0.5) {
                Persona::Technical
            } else {
                Persona::General
            };
            let uas = if rng.random_bool(0.7) {
                vec![tool_ua]
            } else {
                vec![pick(rng, PERSONAL_UAS)]
            };
            let client = Client {
                ips: nat.clone(),
                rotate: 0.0,
                uas,
                models: favourite_model(rng, &[0.55, 0.3, 0.1, 0.05]),
                system: Some(system.clone()),
            };
            let convs = if heavy {
                count(rng, 30.0, 0.5, 8, 120)
            } else {
                count(rng, 5.0, 0.8, 1, 40)
            };
            let requests = human_requests(cx, rng, &rhythm, persona, heavy, &client, convs);
            out.push(Account {
                id: cx.account_id(rng),
                kind: self.kind(),
                label: self.label(),
                campaign: None,
                requests,
            });
        }
        out
    }
}

/// Coding-agent products' system prompts: every user of a product sends the same one.
const AGENT_PRODUCTS: &[&str] = &[
    "You are DevPilot, an autonomous coding agent running inside the user's editor. You can call \
     the tools read_file, write_file, run_terminal and search_code. Plan before you edit, make \
     minimal changes, run the tests after every change, and explain what you did in one \
     paragraph at the end.",
    "You are an AI pair programmer (CodeNest agent mode). Tools: list_dir, open_file, \
     apply_patch, run_command. Always read the relevant files first. Prefer small diffs. Never \
     delete files without asking.",
];

const AGENT_UAS: &[&str] = &["DevPilot/1.14.2 (vscode)", "CodeNest-agent/0.9.7"];

/// Tool results the agent sends back on its own: `{n}`, `{m}`, `{file}`, `{line}` slots.
const TOOL_RESULTS: &[&str] = &[
    "Tool result (run_terminal): {n} passed, {m} failed\nFAILED tests/test_{file}.py::test_case_{line} - AssertionError",
    "Tool result (read_file src/{file}.py): 1-{line} of {n} lines shown.",
    "Tool result (apply_patch): patch applied to src/{file}.py (+{n} -{m})",
    "Tool result (search_code \"{file}\"): {n} matches in {m} files",
    "Tool result (run_command): exit code {m}\nerror: unresolved import `{file}` at line {line}",
    "Tool result (list_dir): {n} entries",
];

const FILES: &[&str] = &["parser", "utils", "models", "api", "config", "cache", "cli"];

/// `coding_agent_user`: see the module notes.
pub(crate) struct CodingAgentUser;

impl Strategy for CodingAgentUser {
    fn kind(&self) -> &'static str {
        "coding_agent_user"
    }

    fn label(&self) -> u8 {
        0
    }

    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, _max: usize) -> Vec<Account> {
        let product = rng.random_range(0..AGENT_PRODUCTS.len());
        let system: Rc<str> = Rc::from(AGENT_PRODUCTS[product]);
        let ua = AGENT_UAS[product];
        let ips: Vec<Rc<str>> = (0..rng.random_range(1..=2))
            .map(|_| Rc::from(residential_ip(rng)))
            .collect();
        let model = if rng.random_bool(0.7) {
            MODEL_LARGE
        } else {
            MODEL_SMALL
        };
        let tz = time_zone(rng);
        let w = cx.window;
        let tasks = count(rng, 25.0, 0.6, 4, 120);
        let starts = spread_daytime(rng, &w, tz, Chronotype::Office, tasks, 0.2);
        let mut requests = Vec::new();
        for t0 in starts {
            let id = if rng.random_bool(0.7) {
                CorpusId::ShareGpt
            } else {
                CorpusId::ArenaHard
            };
            let row = cx.draw_row(rng, id);
            let ask = cx.corpora.get(id).text(row).to_string();
            let cid = conversation_id(rng);
            let ip = ips
                .choose(rng)
                .cloned()
                .unwrap_or_else(|| Rc::from("10.0.0.1"));
            let mut turns = vec![(t0, ask, Some(Origin::row(id, row)))];
            let mut t = t0;
            for _ in 0..rng.random_range(2..=8) {
                t += secs(lognormal(rng, 6.0, 0.6), 1.0);
                let result = pick(rng, TOOL_RESULTS)
                    .replace("{n}", &rng.random_range(1..400).to_string())
                    .replace("{m}", &rng.random_range(0..12).to_string())
                    .replace("{line}", &rng.random_range(1..900).to_string())
                    .replace("{file}", pick(rng, FILES));
                turns.push((t, result, None));
            }
            for (ts, prompt, origin) in turns {
                requests.push(Req {
                    ts,
                    prompt,
                    conversation_id: Some(cid.clone()),
                    system_prompt: Some(system.clone()),
                    response_tokens: Some((lognormal(rng, 220.0, 0.7) as u64).clamp(1, 4096)),
                    model: Some(model),
                    ip: Some(ip.clone()),
                    user_agent: Some(ua),
                    origin,
                });
            }
        }
        vec![Account {
            id: cx.account_id(rng),
            kind: self.kind(),
            label: self.label(),
            campaign: None,
            requests,
        }]
    }
}
