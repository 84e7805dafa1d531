//! The task-endpoint case (`simulate --task-endpoint N`): beside the general chat traffic, an
//! endpoint whose normal traffic is one task, and accounts that query it from another
//! distribution.
//!
//! The endpoint is a math-tutoring app's model (`model` = [`MODEL_TUTOR`]): its users paste
//! grade-school word problems (GSM8K items) under the app's system prompt, from their own
//! homes and phones, at human hours. Extraction accounts use the same app, the same client
//! pool, the same pacing and the same student phrasings, so that nothing but *what* they ask
//! differs: `endpoint_extraction` accounts send 100 queries drawn from general instruction,
//! question and code corpora; `endpoint_extraction_mixed` accounts send 100 requests of which
//! 25 are such queries and the rest word problems like everyone else's (under `--randomise`,
//! 20-400 requests of which 40-100%, or for the mixed kind 10-40%, are off-task). This is the
//! setting of PRADA and of the MMD detector (arXiv 2606.05725): per-account content shift from
//! the endpoint's traffic, not wording, is what gives them away.

use std::rc::Rc;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::client::Client;
use super::corpus::CorpusId;
use super::timing::{count, lognormal, spread_daytime, time_zone, Chronotype};
use super::{Account, Ctx, Origin, Req};

/// The math endpoint's model name.
pub(crate) const MODEL_TUTOR: &str = "nova-tutor-math-1";

/// The tutoring app's system prompt (every request to the endpoint carries it).
const TUTOR_SYSTEM: &str = "You are MathPal, a patient maths tutor for school students. \
Explain each step simply, check the student's arithmetic, and never just give the answer \
without showing how to get there.";

/// What the endpoint serves. `Math` (word problems, GSM8K) is the test weeks' endpoint and
/// `Code` (beginner programming exercises, MBPP) the honest probe's (`scripts/probe_eval.sh`);
/// `Quiz` (general-knowledge questions, TruthfulQA) and `Shell` (shell tasks, AgentBench OS)
/// are for training traffic, so that no model is tested on an endpoint task it was trained
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointTask {
    #[default]
    Math,
    Quiz,
    Code,
    Shell,
}

impl EndpointTask {
    fn corpus(self) -> CorpusId {
        match self {
            EndpointTask::Math => CorpusId::Gsm8k,
            EndpointTask::Quiz => CorpusId::TruthfulQa,
            EndpointTask::Code => CorpusId::Mbpp,
            EndpointTask::Shell => CorpusId::AgentbenchOs,
        }
    }

    pub(crate) fn model(self) -> &'static str {
        match self {
            EndpointTask::Math => MODEL_TUTOR,
            EndpointTask::Quiz => "nova-quiz-helper-1",
            EndpointTask::Code => "nova-code-coach-1",
            EndpointTask::Shell => "nova-shell-helper-1",
        }
    }

    fn system(self) -> &'static str {
        match self {
            EndpointTask::Math => TUTOR_SYSTEM,
            EndpointTask::Quiz => {
                "You are QuizBuddy, a study helper for trivia and general-knowledge \
quizzes. Answer the student's question accurately, say briefly why, and correct common \
misconceptions."
            }
            EndpointTask::Code => {
                "You are CodeCoach, a programming tutor for beginners. Help the student \
write a working solution to their exercise, explain the idea behind it, and point out \
mistakes in any code they paste."
            }
            EndpointTask::Shell => {
                "You are ShellHelper, an assistant for Linux system administration. Work out \
the commands that accomplish the user's task, run them step by step, and report the result."
            }
        }
    }

    /// Off-task corpora: every one of [`OFF_TASK`] but the endpoint's own and its stand-in
    /// (HumanEval's coding exercises are on task for the code endpoint, and serve in MBPP's
    /// place where MBPP is not among the corpora).
    fn off_task(self) -> Vec<CorpusId> {
        let own = self.corpus();
        OFF_TASK
            .iter()
            .copied()
            .filter(|&c| c != own && c != own.stand_in())
            .collect()
    }
}

/// How students paste a problem: `{q}` is the item. The app sends what they type, mostly the
/// bare problem, sometimes with a few words around it (too few to form a template).
const STUDENT_PHRASINGS: &[&str] = &[
    "{q}",
    "{q}",
    "{q}",
    "{q}",
    "{q}",
    "{q} please explain",
    "help: {q}",
    "{q} thanks",
    "{q}??",
];

/// Where off-task queries come from.
const OFF_TASK: &[CorpusId] = &[
    CorpusId::AlpacaEn,
    CorpusId::TruthfulQa,
    CorpusId::HumanEval,
    CorpusId::ArenaHard,
    CorpusId::HhRlhf,
    CorpusId::AwesomePrompts,
    CorpusId::Gsm8k,
];

/// Requests of each extraction account, and the off-task share of a mixed one.
const EXTRACTION_REQUESTS: usize = 100;
const MIXED_OFF_TASK: f64 = 0.25;

/// The kind of the endpoint's honest users, the students.
pub(crate) const STUDENT: &str = "endpoint_user";

/// The endpoint's accounts: `users` students, `users / 4` (at least one) pure extraction
/// accounts and as many mixed ones. Each account gets its own RNG from `seed`.
pub(crate) fn task_endpoint(
    cx: &mut Ctx<'_>,
    seed: u64,
    users: usize,
    task: EndpointTask,
) -> Vec<Account> {
    let mut master = StdRng::seed_from_u64(seed ^ 0x7a5c_e11d);
    let extractors = (users / 4).max(1);
    let mut out = Vec::with_capacity(users + 2 * extractors);
    for (kind, label, n) in [
        (STUDENT, 0u8, users),
        ("endpoint_extraction", 1, extractors),
        ("endpoint_extraction_mixed", 1, extractors),
    ] {
        for _ in 0..n {
            let mut rng = StdRng::seed_from_u64(master.random());
            let pure = kind == "endpoint_extraction";
            let (requests, off_task) = match (kind, cx.randomise) {
                (STUDENT, _) => (count(&mut rng, 30.0, 0.7, 3, 200), 0.0),
                (_, false) => (EXTRACTION_REQUESTS, if pure { 1.0 } else { MIXED_OFF_TASK }),
                // Randomised like the campaigns' volume and cover: what the kind asks for
                // stays off-task, how much of it and among how many on-task requests does not.
                (_, true) => {
                    let requests = count(&mut rng, 100.0, 0.6, 20, 400);
                    let off_task = if pure {
                        rng.random_range(0.4..=1.0)
                    } else {
                        rng.random_range(0.1..0.4)
                    };
                    (requests, off_task)
                }
            };
            let requests = student_requests(cx, &mut rng, task, requests, off_task);
            out.push(Account {
                id: cx.account_id(&mut rng),
                kind,
                label,
                campaign: None,
                requests,
            });
        }
    }
    out
}

/// `n` requests of one app user, a share `off_task` of them (exactly, rounded) drawn from
/// the off-task corpora, the rest the endpoint's task.
fn student_requests(
    cx: &mut Ctx<'_>,
    rng: &mut StdRng,
    task: EndpointTask,
    n: usize,
    off_task: f64,
) -> Vec<Req> {
    let off_corpora = task.off_task();
    let client = Client::personal(rng);
    let tz = time_zone(rng);
    let chrono = Chronotype::random(rng);
    let times = spread_daytime(rng, &cx.window, tz, chrono, n, 0.6);
    let k = (off_task * n as f64).round() as usize;
    let mut off: Vec<bool> = (0..n).map(|i| i < k).collect();
    // Off-task queries spread through the account's history.
    for i in (1..n).rev() {
        off.swap(i, rng.random_range(0..=i));
    }
    let system: Rc<str> = Rc::from(task.system());
    times
        .into_iter()
        .zip(off)
        .map(|(ts, off)| {
            let id = if off {
                *off_corpora.choose(rng).unwrap_or(&CorpusId::AlpacaEn)
            } else {
                task.corpus()
            };
            let row = cx.draw_row(rng, id);
            let item = cx.corpora.get(id).text(row).trim().to_string();
            let phrasing = STUDENT_PHRASINGS
                .choose(rng)
                .copied()
                .unwrap_or(STUDENT_PHRASINGS[0]);
            Req {
                ts,
                prompt: phrasing.replace("{q}", &item),
                conversation_id: None,
                system_prompt: Some(system.clone()),
                response_tokens: Some((lognormal(rng, 260.0, 0.5) as u64).clamp(1, 2048)),
                model: Some(task.model()),
                ip: Some(client.ip(rng)),
                user_agent: Some(client.ua(rng)),
                origin: Some(Origin::row(id, row)),
            }
        })
        .collect()
}
