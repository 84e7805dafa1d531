//! Benign strategies: people, and the automated workloads that look like extraction.
//!
//! - `benign_human`: a person replaying real conversations in order, in sessions, in their time
//!   zone, with days off. Most accounts of any real API are like this, and small.
//! - `heavy_user`: the same, most days and many times a day; volume alone must not flag them.
//! - `bulk_business`: one fixed template over many different customer texts at a steady,
//!   scripted rate with a shared system prompt, sometimes from a production and a development
//!   key of the same organisation. Template rate and automation look like a campaign; topic
//!   spread and the lack of any task-set sweep do not.
//! - `benchmark_eval`: one contiguous slice of a public benchmark, once, in a burst, in a
//!   harness format with short answers. It is a task-set sweep, but a single one.
//! - `narrow_integration`: one tool-calling flow over and over (order status, weather), driven by
//!   end users through the day, with a system prompt that every install of the flow shares.

use std::rc::Rc;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use super::client::{
    pick, residential_ip, subnet, Client, MODEL_LARGE, MODEL_OLD, MODEL_REASONER, MODEL_SMALL,
    SDK_UAS,
};
use super::corpus::CorpusId;
use super::text::{
    business_system, casual_noise, strip_zero_shot, BusinessTemplate, EvalFormat, Lang, Slots,
    BUSINESS_TEMPLATES, COT_EVAL_FORMATS, EVAL_FORMATS, FLOWS, GENERIC_SYSTEM, KEY_CHECKS,
    PERSONAL_HABITS, RED_TEAM_FORMATS, TARGET_LANGUAGES, TRANSLATION_TEMPLATES,
};
use super::timing::{
    count, daytime_events, human_timeline, lognormal, secs, spread_daytime, time_zone, weighted,
    Chronotype, Rhythm, TurnShape, Window, HOUR, MIN,
};
use super::{conversation_id, Account, Ctx, Origin, Req, Strategy};

/// Which human corpora a person's conversations come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Persona {
    General,
    Casual,
    Chinese,
    Technical,
}

impl Persona {
    pub(crate) fn random(rng: &mut StdRng) -> Self {
        match weighted(rng, &[0.5, 0.2, 0.12, 0.18]) {
            0 => Persona::General,
            1 => Persona::Casual,
            2 => Persona::Chinese,
            _ => Persona::Technical,
        }
    }

    fn sources(self, heavy: bool) -> Vec<(CorpusId, f64)> {
        use CorpusId::*;
        let mut s = match self {
            Persona::General => vec![
                (ShareGpt, 0.7),
                (HhRlhf, 0.12),
                (Lima, 0.1),
                (ArenaHard, 0.05),
                (Oasst1Zh, 0.03),
            ],
            Persona::Casual => vec![(HhRlhf, 0.6), (ShareGpt, 0.35), (Lima, 0.05)],
            Persona::Chinese => vec![(Oasst1Zh, 0.75), (ShareGpt, 0.2), (ArenaHard, 0.05)],
            Persona::Technical => vec![(ShareGpt, 0.5), (ArenaHard, 0.3), (Lima, 0.2)],
        };
        if heavy {
            s.push((AwesomePrompts, 0.06));
        }
        s
    }

    /// `sources` with public task-set items taking `share` of the draws: people ask the
    /// items extractors sweep too (a homework problem, a coding exercise, a trivia question),
    /// which ones by persona. A share of 0 leaves `sources` as they are.
    fn with_tasks(self, mut sources: Vec<(CorpusId, f64)>, share: f64) -> Vec<(CorpusId, f64)> {
        use CorpusId::*;
        if share <= 0.0 {
            return sources;
        }
        let tasks: &[(CorpusId, f64)] = match self {
            Persona::Technical => &[(HumanEval, 0.3), (Mbpp, 0.4), (Gsm8k, 0.3)],
            Persona::Chinese => &[(Gsm8k, 0.6), (AlpacaEn, 0.4)],
            Persona::General | Persona::Casual => {
                &[(Gsm8k, 0.35), (TruthfulQa, 0.3), (AlpacaEn, 0.35)]
            }
        };
        let human: f64 = sources.iter().map(|s| s.1).sum();
        let scale = human * share / (1.0 - share);
        sources.extend(tasks.iter().map(|&(id, w)| (id, w * scale)));
        sources
    }
}

/// A person's prompting habit (`SimOptions::people_prompting`): a phrase of
/// [`PERSONAL_HABITS`] in the person's language and phrasing bank, added before or after a
/// share `rate` of their turns.
struct Habit {
    phrase: &'static str,
    rate: f64,
    before: bool,
    lang: Lang,
}

impl Habit {
    /// Whether this person has a habit, and which. Draws nothing when no one has one, so that
    /// a run without `--people-prompting` is what it was before the flag existed.
    /// With `--wide-people` twice the share of people have one (at most 0.9): a habit at a high
    /// rate (nearly every question "Think step by step.") is what makes a heavy user look like a
    /// reasoning sweep, and a training week of a few dozen heavy users at the world's share holds
    /// about one such person (docs/evaluation.md, session 20).
    fn draw(cx: &Ctx<'_>, rng: &mut StdRng, persona: Persona) -> Option<Habit> {
        let share = if cx.wide_people {
            (2.0 * cx.people_prompting).min(0.9)
        } else {
            cx.people_prompting
        };
        if share <= 0.0 || !rng.random_bool(share) {
            return None;
        }
        let lang = match persona {
            Persona::Chinese => Lang::Zh,
            _ => Lang::En,
        };
        let bank: Vec<&'static str> = cx
            .phrasings
            .bank(PERSONAL_HABITS)
            .into_iter()
            .filter(|(l, _)| *l == lang)
            .map(|(_, t)| t)
            .collect();
        Some(Habit {
            phrase: bank.choose(rng).copied()?,
            rate: rng.random_range(0.3..=1.0),
            before: rng.random_bool(0.25),
            lang,
        })
    }

    /// `text` with the phrase added, on a share `rate` of calls.
    fn apply(&self, rng: &mut StdRng, text: &str) -> String {
        if !rng.random_bool(self.rate) {
            return text.to_string();
        }
        let sep = match (self.lang, rng.random_bool(0.5)) {
            (Lang::Zh, _) => "",
            (_, true) => " ",
            (_, false) => "\n\n",
        };
        if self.before {
            format!("{}{sep}{text}", self.phrase)
        } else {
            format!("{text}{sep}{}", self.phrase)
        }
    }
}

/// Real conversations of `persona`'s corpora laid out in `rhythm`'s sessions: turns in corpus
/// order under one conversation id, with think time between them. Under `--randomise` each
/// person's share of task-set items is drawn from [0, 2F) around `--honest-task-share F`
/// (capped at 0.9, which lowers the mean when F > 0.45); with `--wide-people` each person's
/// corpus weights are scaled at random;
/// with `--people-prompting` some people add a habitual phrase to their questions ([`Habit`]).
pub(crate) fn human_requests(
    cx: &mut Ctx<'_>,
    rng: &mut StdRng,
    rhythm: &Rhythm,
    persona: Persona,
    heavy: bool,
    client: &Client,
    n_convs: usize,
) -> Vec<Req> {
    let share = if cx.randomise && cx.honest_task_share > 0.0 {
        rng.random_range(0.0..(2.0 * cx.honest_task_share).min(0.9))
    } else {
        cx.honest_task_share
    };
    let mut sources = persona.with_tasks(persona.sources(heavy), share);
    if cx.wide_people {
        // Each person their own mix of the persona's corpora (each weight times a factor in
        // [e^-1.5, e^1.5]): some mostly ask one-off questions, some mostly hold conversations,
        // so that a model meets people whose conversation shape is far from the persona's mean.
        for s in &mut sources {
            s.1 *= rng.random_range(-1.5f64..1.5).exp();
        }
    }
    let habit = Habit::draw(cx, rng, persona);
    let w: Vec<f64> = sources.iter().map(|s| s.1).collect();
    let mut convs: Vec<(CorpusId, u32, Vec<TurnShape>)> = Vec::with_capacity(n_convs);
    for _ in 0..n_convs {
        let id = sources[weighted(rng, &w)].0;
        let conv = cx.draw_conv(rng, id);
        let corpus = cx.corpora.get(id);
        let shapes = corpus.convs[conv as usize]
            .iter()
            .map(|&row| TurnShape {
                prompt_chars: corpus.text(row).chars().count(),
                response_tokens: (lognormal(rng, 320.0, 0.8) as u64).clamp(1, 4096),
            })
            .collect();
        convs.push((id, conv, shapes));
    }
    let shapes: Vec<Vec<TurnShape>> = convs.iter().map(|c| c.2.clone()).collect();
    let times = human_timeline(rng, &cx.window, rhythm, &shapes);
    let mut out = Vec::new();
    for ((id, conv, shapes), times) in convs.iter().zip(times) {
        let corpus = cx.corpora.get(*id);
        let cid = conversation_id(rng);
        let ip = client.ip(rng);
        let ua = client.ua(rng);
        let model = client.model(rng);
        for (pos, ((&row, shape), ts)) in corpus.convs[*conv as usize]
            .iter()
            .zip(shapes)
            .zip(times)
            .enumerate()
        {
            let text = corpus.text(row);
            let prompt = match &habit {
                Some(h) => h.apply(rng, text),
                None => text.to_string(),
            };
            out.push(Req {
                ts,
                prompt,
                conversation_id: Some(cid.clone()),
                system_prompt: client.system.clone(),
                response_tokens: Some(shape.response_tokens),
                model: Some(model),
                ip: Some(ip.clone()),
                user_agent: Some(ua),
                origin: Some(Origin {
                    corpus: *id,
                    row,
                    conv: Some(*conv),
                    pos: pos as u32,
                }),
            });
        }
    }
    out
}

/// A person: occasional (`benign_human`) or heavy (`heavy_user`).
pub(crate) struct Human {
    heavy: bool,
}

impl Human {
    pub(crate) fn casual() -> Self {
        Human { heavy: false }
    }

    pub(crate) fn heavy() -> Self {
        Human { heavy: true }
    }
}

impl Strategy for Human {
    fn kind(&self) -> &'static str {
        if self.heavy {
            "heavy_user"
        } else {
            "benign_human"
        }
    }

    fn label(&self) -> u8 {
        0
    }

    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, _max: usize) -> Vec<Account> {
        let rhythm = if self.heavy {
            Rhythm::heavy(rng)
        } else {
            Rhythm::casual(rng)
        };
        let persona = Persona::random(rng);
        let client = Client::personal(rng);
        let n = if self.heavy {
            count(rng, 80.0, 0.5, 25, 300)
        } else {
            count(rng, 4.0, 0.9, 1, 40)
        };
        let requests = human_requests(cx, rng, &rhythm, persona, self.heavy, &client, n);
        vec![Account {
            id: cx.account_id(rng),
            kind: self.kind(),
            label: self.label(),
            campaign: None,
            requests,
        }]
    }
}

/// A customer document from one of `corpora`, not absurdly short or long, and where it came
/// from.
fn draw_doc(cx: &mut Ctx<'_>, rng: &mut StdRng, corpora: &[CorpusId]) -> (String, Origin) {
    let id = *corpora.choose(rng).unwrap_or(&CorpusId::ShareGpt);
    let mut text = "";
    let mut origin = Origin::row(id, 0);
    for _ in 0..8 {
        let row = cx.draw_row(rng, id);
        text = cx.corpora.get(id).text(row);
        origin = Origin::row(id, row);
        let n = text.chars().count();
        if (20..=6000).contains(&n) {
            break;
        }
    }
    (text.to_string(), origin)
}

/// `bulk_business`: one organisation (one to three accounts) running one template;
/// `translation_pipeline` the same with a localisation template into one target language.
pub(crate) struct BulkBusiness {
    kind: &'static str,
    templates: &'static [BusinessTemplate],
}

impl BulkBusiness {
    pub(crate) fn general() -> Self {
        BulkBusiness {
            kind: "bulk_business",
            templates: BUSINESS_TEMPLATES,
        }
    }

    pub(crate) fn translation() -> Self {
        BulkBusiness {
            kind: "translation_pipeline",
            templates: TRANSLATION_TEMPLATES,
        }
    }
}

impl Strategy for BulkBusiness {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn label(&self) -> u8 {
        0
    }

    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, max: usize) -> Vec<Account> {
        let template = *self.templates.choose(rng).unwrap_or(&BUSINESS_TEMPLATES[0]);
        let target = pick(rng, TARGET_LANGUAGES);
        let text = template.text.replace("{lang}", target);
        let system: Option<Rc<str>> = rng.random_bool(0.8).then(|| Rc::from(business_system(rng)));
        let n_accounts = (1 + weighted(rng, &[0.55, 0.3, 0.15])).min(max.max(1));
        let tz = time_zone(rng);
        let net = subnet(rng);
        let ua = pick(rng, SDK_UAS);
        let model = if rng.random_bool(0.6) {
            MODEL_SMALL
        } else {
            MODEL_LARGE
        };
        let fresh_conv = rng.random_bool(0.3);
        let w = cx.window;
        let mut out = Vec::with_capacity(n_accounts);
        for i in 0..n_accounts {
            let times = if i == 0 {
                production_times(rng, &w, tz)
            } else {
                // A development key: someone trying the pipeline on a few documents.
                let n = count(rng, 30.0, 0.7, 5, 150);
                spread_daytime(rng, &w, tz, Chronotype::Office, n, 0.1)
            };
            let mut client = Client::server(rng, net, ua, model);
            client.system = system.clone();
            let mut requests = Vec::with_capacity(times.len());
            let mut last_doc = (String::new(), None);
            for ts in times {
                let (doc, origin) = if i > 0 && !last_doc.0.is_empty() && rng.random_bool(0.3) {
                    last_doc.clone()
                } else {
                    let (doc, origin) = draw_doc(cx, rng, template.docs);
                    (doc, Some(origin))
                };
                requests.push(Req {
                    ts,
                    prompt: text.replace("{doc}", &doc),
                    conversation_id: fresh_conv.then(|| conversation_id(rng)),
                    system_prompt: client.system.clone(),
                    response_tokens: Some(
                        (lognormal(rng, template.response_median, 0.5) as u64).clamp(1, 2048),
                    ),
                    model: Some(client.model(rng)),
                    ip: Some(client.ip(rng)),
                    user_agent: Some(client.ua(rng)),
                    origin,
                });
                last_doc = (doc, origin);
            }
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

/// A production job: a nightly batch at a fixed local hour, or a stream through office hours.
fn production_times(rng: &mut StdRng, w: &Window, tz: i32) -> Vec<i64> {
    let total = count(rng, 700.0, 0.6, 150, 3000);
    let per_day = total as f64 / w.days as f64;
    if rng.random_bool(0.5) {
        let hour = rng.random_range(0.5..4.5);
        let weekends = rng.random_bool(0.5);
        let gap = rng.random_range(1.0..8.0);
        let mut out = Vec::with_capacity(total);
        for day in 0..w.days {
            if w.is_weekend(day) && !weekends {
                continue;
            }
            let n = (lognormal(rng, per_day, 0.2).round() as usize).max(1);
            let mut t = w.local_ms(day, hour, tz) + rng.random_range(0..5 * MIN);
            for _ in 0..n {
                if w.contains(t) {
                    out.push(t);
                }
                t += secs(lognormal(rng, gap, 0.25), 0.2);
            }
        }
        if out.is_empty() {
            out.push(w.start_ms + rng.random_range(0..w.len_ms()));
        }
        out
    } else {
        let chrono = Chronotype::Office;
        let mut out = daytime_events(rng, w, tz, chrono, per_day, 0.3);
        if out.is_empty() {
            out = spread_daytime(rng, w, tz, chrono, 1, 0.0);
        }
        out
    }
}

/// `benchmark_eval`: one slice of a benchmark, run once (sometimes on two models) in a burst;
/// `eval_harness_cot` the same with chain-of-thought prompting (the harnesses' "-cot" tasks:
/// honest evaluators ask for step-by-step reasoning too); `red_team_eval` a safety team's run
/// of red-team prompts through a refusal harness.
pub(crate) struct BenchmarkEval {
    kind: &'static str,
    formats: &'static [EvalFormat],
}

impl BenchmarkEval {
    pub(crate) fn answer_only() -> Self {
        BenchmarkEval {
            kind: "benchmark_eval",
            formats: EVAL_FORMATS,
        }
    }

    pub(crate) fn cot() -> Self {
        BenchmarkEval {
            kind: "eval_harness_cot",
            formats: COT_EVAL_FORMATS,
        }
    }

    pub(crate) fn red_team() -> Self {
        BenchmarkEval {
            kind: "red_team_eval",
            formats: RED_TEAM_FORMATS,
        }
    }
}

impl Strategy for BenchmarkEval {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn label(&self) -> u8 {
        0
    }

    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, _max: usize) -> Vec<Account> {
        let format = *self.formats.choose(rng).unwrap_or(&EVAL_FORMATS[0]);
        let corpus = cx.corpora.get(format.corpus);
        let rows: Vec<u32> = if format.sources.is_empty() {
            (0..corpus.texts.len() as u32).collect()
        } else {
            corpus.rows_with_source(format.sources)
        };
        let rows = if rows.is_empty() {
            (0..corpus.texts.len() as u32).collect()
        } else {
            rows
        };
        let n = count(rng, 200.0, 0.6, 40, 800).min(rows.len());
        let first = rng.random_range(0..=rows.len() - n);
        let slice = &rows[first..first + n];

        let w = cx.window;
        let tz = time_zone(rng);
        let day = rng.random_range(0..w.days);
        let t0 = w.local_ms(day, Chronotype::Office.hour(rng), tz).clamp(
            w.start_ms + HOUR,
            (w.end_ms - 6 * HOUR).max(w.start_ms + HOUR),
        );
        let ip: Rc<str> = if rng.random_bool(0.5) {
            Rc::from(residential_ip(rng))
        } else {
            let net = subnet(rng);
            Rc::from(super::client::ip_in(rng, net))
        };
        let ua = pick(
            rng,
            &[
                "OpenAI/Python 1.40.6",
                "OpenAI/Python 1.51.0",
                "python-httpx/0.27.0",
                "aiohttp/3.9.5",
            ],
        );
        let system: Option<Rc<str>> = rng
            .random_bool(0.4)
            .then(|| Rc::from(pick(rng, GENERIC_SYSTEM)));
        let mut models = [MODEL_LARGE, MODEL_SMALL, MODEL_OLD, MODEL_REASONER];
        models.shuffle(rng);
        let runs = if rng.random_bool(0.3) { 2 } else { 1 };

        let mut requests = Vec::new();
        let req =
            |ts: i64, prompt: String, tokens: u64, model: &'static str, row: Option<u32>| Req {
                ts,
                prompt,
                conversation_id: None,
                system_prompt: system.clone(),
                response_tokens: Some(tokens),
                model: Some(model),
                ip: Some(ip.clone()),
                user_agent: Some(ua),
                origin: row.map(|row| Origin::row(format.corpus, row)),
            };
        // Trying the key first.
        let mut t = t0 - secs(lognormal(rng, 600.0, 0.6), 60.0);
        for _ in 0..rng.random_range(0..=3) {
            requests.push(req(
                t,
                pick(rng, KEY_CHECKS).to_string(),
                rng.random_range(3..30),
                models[0],
                None,
            ));
            t += secs(lognormal(rng, 30.0, 0.6), 3.0);
        }
        let mut t = t0.max(t);
        let gap = rng.random_range(0.3..2.5);
        for model in models.iter().take(runs) {
            for &row in slice {
                let text = corpus.text(row);
                let task = if format.strip_zero_shot {
                    strip_zero_shot(text)
                } else {
                    text.to_string()
                };
                let tokens = (lognormal(rng, format.response_median, 0.4) as u64).clamp(1, 1024);
                requests.push(req(
                    t,
                    format.template.replace("{task}", &task),
                    tokens,
                    model,
                    Some(row),
                ));
                t += secs(lognormal(rng, gap, 0.5), 0.05);
            }
            t += secs(lognormal(rng, 1800.0, 0.6), 120.0);
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

/// `narrow_integration`: one tool-calling flow, triggered by end users through the day.
pub(crate) struct NarrowIntegration;

impl Strategy for NarrowIntegration {
    fn kind(&self) -> &'static str {
        "narrow_integration"
    }

    fn label(&self) -> u8 {
        0
    }

    fn generate(&self, cx: &mut Ctx<'_>, rng: &mut StdRng, _max: usize) -> Vec<Account> {
        let flow = FLOWS.choose(rng).unwrap_or(&FLOWS[0]);
        let w = cx.window;
        let tz = time_zone(rng);
        let chrono = if rng.random_bool(0.7) {
            Chronotype::Office
        } else {
            Chronotype::Evening
        };
        let per_day = lognormal(rng, 25.0, 0.6).clamp(6.0, 150.0);
        let mut events = daytime_events(rng, &w, tz, chrono, per_day, 0.6);
        if events.is_empty() {
            events = spread_daytime(rng, &w, tz, chrono, 1, 1.0);
        }
        let model = if rng.random_bool(0.7) {
            MODEL_SMALL
        } else {
            MODEL_LARGE
        };
        let net = subnet(rng);
        let ua = pick(rng, SDK_UAS);
        let mut client = Client::server(rng, net, ua, model);
        client.system = Some(Rc::from(flow.system));
        let mut requests = Vec::with_capacity(events.len() * 2);
        for t0 in events {
            let slots = Slots::new(rng);
            let cid = conversation_id(rng);
            let ip = client.ip(rng);
            let first = slots.fill(pick(rng, flow.messages));
            let mut turns = vec![(t0, casual_noise(rng, first), 30.0)];
            if rng.random_bool(0.75) {
                let t = t0 + secs(lognormal(rng, 1.5, 0.5), 0.3);
                turns.push((t, slots.fill(flow.result), 45.0));
                if rng.random_bool(0.3) {
                    let t = t + secs(lognormal(rng, 25.0, 0.7), 3.0);
                    let followup = slots.fill(pick(rng, flow.followups));
                    turns.push((t, casual_noise(rng, followup), 35.0));
                }
            }
            for (ts, prompt, median) in turns {
                requests.push(Req {
                    ts,
                    prompt,
                    conversation_id: Some(cid.clone()),
                    system_prompt: client.system.clone(),
                    response_tokens: Some((lognormal(rng, median, 0.5) as u64).clamp(1, 1024)),
                    model: Some(model),
                    ip: Some(ip.clone()),
                    user_agent: Some(client.ua(rng)),
                    origin: None,
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
