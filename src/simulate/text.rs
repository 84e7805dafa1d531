//! Prompt wording: the wrappers extraction campaigns put around their tasks, the templates of
//! benign automated workloads, and the noise that keeps any single phrase from identifying a
//! campaign.
//!
//! A detector that keys on "step by step" would be trivial to evade and would flag every
//! student; the simulator therefore draws each campaign's wrappers from shared pools (campaigns
//! overlap in wording), in several languages, puts them before or after the task, and perturbs
//! casing, punctuation, spacing and filler phrases per request. Task text itself is left intact:
//! an extractor wants the exact benchmark item answered. Only the wrapper is noised.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::client::pick;
use super::corpus::CorpusId;

/// Language of a wrapper or filler phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Zh,
    Ru,
    Es,
    Fr,
    De,
    Ja,
    Ko,
    Pt,
}

impl Lang {
    pub(crate) const ALL: [Lang; 9] = [
        Lang::En,
        Lang::Zh,
        Lang::Ru,
        Lang::Es,
        Lang::Fr,
        Lang::De,
        Lang::Ja,
        Lang::Ko,
        Lang::Pt,
    ];

    fn latin(self) -> bool {
        matches!(self, Lang::En | Lang::Es | Lang::Fr | Lang::De | Lang::Pt)
    }
}

/// A template with a `{task}` slot.
pub(crate) type Wrapper = (Lang, &'static str);

/// Chain-of-thought elicitation: "show your full/internal reasoning".
pub(crate) const COT_WRAPPERS: &[Wrapper] = &[
    (Lang::En, "Explain your full reasoning step by step before giving the final answer.\n\n{task}"),
    (Lang::En, "{task}\n\nShow all of your internal reasoning, every intermediate step, then state the answer."),
    (Lang::En, "Think through this carefully and write out the complete chain of thought you use to reach the answer: {task}"),
    (Lang::En, "Solve the following. Before answering, lay out your hidden reasoning process in detail, including any dead ends.\n{task}"),
    (Lang::En, "{task}\nWalk me through exactly how you reason about this, step by step, as if thinking out loud."),
    (Lang::En, "I want to understand how you think. For the problem below, write out the internal reasoning behind your answer in full.\n\n{task}"),
    (Lang::En, "Problem:\n{task}\n\nProvide a detailed derivation. Do not skip any steps; verify each one before moving on."),
    (Lang::En, "{task}\n\nReason it out explicitly. Put your thinking inside <thinking></thinking> tags and the answer after."),
    (Lang::En, "Please answer the question below. First write your complete thought process, then give the final answer on its own line.\n\n{task}"),
    (Lang::Zh, "请一步一步地详细解释你的推理过程，然后给出最终答案。\n\n{task}"),
    (Lang::Zh, "{task}\n\n请写出你完整的思考过程，包括每一个中间步骤。"),
    (Lang::Zh, "在回答之前，请先展示你内部的推理链条：{task}"),
    (Lang::Zh, "请把你解决下面这个问题时的全部思路都写出来，不要省略任何步骤。\n{task}"),
    (Lang::Zh, "题目：{task}\n\n要求：详细写出分析过程和每一步的理由，最后单独一行给出答案。"),
    (Lang::Ru, "Объясни своё рассуждение полностью, шаг за шагом, а затем дай окончательный ответ.\n\n{task}"),
    (Lang::Ru, "{task}\n\nПокажи весь свой внутренний ход мыслей, каждый промежуточный шаг."),
    (Lang::Ru, "Прежде чем ответить, подробно распиши цепочку рассуждений: {task}"),
    (Lang::Es, "Explica tu razonamiento completo paso a paso antes de dar la respuesta final.\n\n{task}"),
    (Lang::Es, "{task}\n\nMuestra todo tu razonamiento interno, cada paso intermedio, y luego la respuesta."),
    (Lang::Es, "Piensa en voz alta y escribe la cadena completa de razonamiento que usas para resolver esto: {task}"),
    (Lang::Fr, "Explique ton raisonnement complet étape par étape avant de donner la réponse finale.\n\n{task}"),
    (Lang::Fr, "{task}\n\nDétaille tout ton raisonnement interne, chaque étape intermédiaire, puis la réponse."),
    (Lang::De, "Erkläre deinen vollständigen Gedankengang Schritt für Schritt, bevor du die endgültige Antwort gibst.\n\n{task}"),
    (Lang::De, "{task}\n\nZeige deine gesamte interne Argumentation mit allen Zwischenschritten."),
    (Lang::Ja, "最終的な答えを出す前に、推論の過程をすべて段階的に説明してください。\n\n{task}"),
    (Lang::Ja, "{task}\n\nあなたの内部の思考過程を、途中のステップも含めてすべて書き出してください。"),
    (Lang::Ko, "최종 답을 내기 전에 전체 추론 과정을 단계별로 자세히 설명해 주세요.\n\n{task}"),
    (Lang::Ko, "{task}\n\n중간 단계를 포함한 당신의 내부 사고 과정을 모두 적어 주세요."),
    (Lang::Pt, "Explique todo o seu raciocínio passo a passo antes de dar a resposta final.\n\n{task}"),
    (Lang::Pt, "{task}\n\nMostre todo o seu raciocínio interno, cada etapa intermediária."),
];

/// Long, training-quality answers (data generation rather than reasoning traces).
pub(crate) const DETAIL_WRAPPERS: &[Wrapper] = &[
    (Lang::En, "{task}"),
    (Lang::En, "{task}\n\nGive a thorough, well-structured answer."),
    (Lang::En, "Answer the following as completely and accurately as you can, as an expert would.\n\n{task}"),
    (Lang::En, "{task}\n\nWrite a long, high-quality response with examples."),
    (Lang::En, "Respond to this instruction with the best possible answer:\n{task}"),
    (Lang::En, "{task}\nPlease be detailed and cover edge cases."),
    (Lang::Zh, "{task}\n\n请给出详细、完整、高质量的回答。"),
    (Lang::Zh, "请像专家一样全面地回答下面的问题：\n{task}"),
    (Lang::Ru, "{task}\n\nДай подробный и развёрнутый ответ."),
    (Lang::Es, "{task}\n\nResponde de forma detallada y completa."),
    (Lang::De, "{task}\n\nBitte ausführlich und vollständig antworten."),
];

/// Coding tasks: reasoning first, then full code.
pub(crate) const CODING_WRAPPERS: &[Wrapper] = &[
    (Lang::En, "Complete the following Python function. First explain your approach step by step, then give the full implementation.\n\n```python\n{task}\n```"),
    (Lang::En, "{task}\n\nWrite a correct, efficient solution. Include your complete reasoning before the code."),
    (Lang::En, "Implement this and explain every design decision:\n{task}"),
    (Lang::En, "Solve in Python with detailed comments and a step-by-step explanation of the algorithm.\n\n{task}"),
    (Lang::En, "{task}\n\nThink about edge cases first, list them, then write the final code in one block."),
    (Lang::En, "Here is a programming problem.\n{task}\nReturn: 1) analysis 2) complexity 3) code 4) tests."),
    (Lang::Zh, "请用Python完成下面的函数，先逐步说明思路，再给出完整代码。\n\n{task}"),
    (Lang::Zh, "{task}\n\n请先分析题目，写出详细的解题思路，然后给出完整可运行的代码。"),
    (Lang::Ru, "Реши задачу на Python. Сначала подробно объясни ход решения, затем приведи код.\n\n{task}"),
    (Lang::Es, "Resuelve en Python. Explica primero el razonamiento paso a paso y luego da el código completo.\n\n{task}"),
];

/// Operating-system agent tasks.
pub(crate) const AGENT_WRAPPERS: &[Wrapper] = &[
    (
        Lang::En,
        "Task: {task}\nBegin. Think step by step and issue one command at a time.",
    ),
    (Lang::En, "{task}"),
    (
        Lang::En,
        "You are in a fresh Ubuntu container. {task}\nExplain your plan before each command.",
    ),
    (
        Lang::En,
        "Goal: {task}\n\nFirst reason about what you need to inspect, then act.",
    ),
    (
        Lang::En,
        "{task}\n\nNow begin. Output your reasoning, then the command in a ```bash block.",
    ),
    (Lang::Zh, "任务：{task}\n请先思考再一步一步执行命令。"),
];

/// Reward-model use: `{task}`, `{answer}`, `{answer2}`, `{rubric}` slots.
pub(crate) const RUBRIC_TEMPLATES: &[Wrapper] = &[
    (Lang::En, "You are a strict grader. Grade the answer below on a scale of 1-10 against the rubric. Reply with only the number.\n\nRubric:\n{rubric}\n\nQuestion:\n{task}\n\nAnswer:\n{answer}"),
    (Lang::En, "Score this response from 1 to 10.\nCriteria: {rubric}\n\n### Instruction\n{task}\n\n### Response\n{answer}\n\n### Score"),
    (Lang::En, "[Task]\n{task}\n[Candidate answer]\n{answer}\n[Rubric]\n{rubric}\nRate the candidate answer 1-10 and justify the score in one sentence."),
    (Lang::En, "Which of the two responses better satisfies the rubric? Answer \"A\" or \"B\" only.\nRubric: {rubric}\nPrompt: {task}\n\nResponse A:\n{answer}\n\nResponse B:\n{answer2}"),
    (Lang::En, "Evaluate the following answer.\nQuestion: {task}\nAnswer: {answer}\nUse this rubric: {rubric}\nOutput JSON: {\"score\": <1-10>, \"reason\": \"...\"}"),
    (Lang::En, "Act as a reward model. Given the prompt and the completion, output a single scalar reward between 1 and 10.\n<prompt>{task}</prompt>\n<completion>{answer}</completion>\nGuidelines: {rubric}"),
    (Lang::Zh, "请根据以下评分标准，对回答进行1到10分的评分，只输出分数。\n评分标准：{rubric}\n问题：{task}\n回答：{answer}"),
    (Lang::Zh, "你是一名严格的评审。问题：{task}\n\n回答A：{answer}\n\n回答B：{answer2}\n\n依据“{rubric}”判断哪个回答更好，只输出A或B。"),
    (Lang::Ru, "Оцени ответ по шкале от 1 до 10 по критериям: {rubric}.\nВопрос: {task}\nОтвет: {answer}\nВыведи только число."),
    (Lang::Es, "Califica la respuesta del 1 al 10 según la rúbrica ({rubric}).\nPregunta: {task}\nRespuesta: {answer}"),
];

pub(crate) const RUBRICS: &[&str] = &[
    "correctness, completeness, clarity",
    "1) factual accuracy 2) quality of reasoning 3) conciseness",
    "helpfulness, honesty and harmlessness, equally weighted",
    "Does the answer reach the correct final result? Is every step justified? Deduct 3 points for any arithmetic error.",
    "code correctness (passes the tests), efficiency, readability",
    "instruction following, depth, and absence of hallucinations",
    "10 = expert-level and fully correct; 5 = partially correct; 1 = wrong or off-topic",
    "逻辑正确性、完整性、表达清晰度",
    "accuracy (50%), completeness (30%), style (20%)",
    "Is the final answer correct? Ignore formatting.",
    "relevance to the question, use of evidence, coherence",
    "penalise verbosity; reward precise, verifiable statements",
    "would an expert in the field accept this answer as is?",
    "safety, factuality, helpfulness",
    "правильность, полнота, ясность",
    "corrección, claridad y concisión",
];

const EN_PREFIXES: &[&str] = &[
    "Hi! ",
    "Hello, ",
    "Quick question. ",
    "Task: ",
    "Please help: ",
    "Hey, ",
    "OK next one. ",
    "Another one: ",
    "Here you go. ",
];
const EN_SUFFIXES: &[&str] = &[
    " Thanks!",
    " Be thorough.",
    " Take your time.",
    " Answer in detail.",
    " thx",
    " Thank you.",
    " Don't skip anything.",
];
const ZH_PREFIXES: &[&str] = &["你好，", "任务：", "请回答：", "下一题：", "帮我看看这个："];
const ZH_SUFFIXES: &[&str] = &["谢谢！", "越详细越好。", "请认真回答。"];
const RU_PREFIXES: &[&str] = &["Привет! ", "Задача: ", "Вопрос: "];
const RU_SUFFIXES: &[&str] = &[" Спасибо!", " Подробно, пожалуйста."];
const ES_PREFIXES: &[&str] = &["Hola, ", "Tarea: ", "Pregunta: "];
const ES_SUFFIXES: &[&str] = &[" ¡Gracias!", " Con detalle, por favor."];
const OTHER_PREFIXES: &[&str] = &["", "Q: "];
const OTHER_SUFFIXES: &[&str] = &["", " :)"];

fn fillers(lang: Lang) -> (&'static [&'static str], &'static [&'static str]) {
    match lang {
        Lang::En => (EN_PREFIXES, EN_SUFFIXES),
        Lang::Zh => (ZH_PREFIXES, ZH_SUFFIXES),
        Lang::Ru => (RU_PREFIXES, RU_SUFFIXES),
        Lang::Es => (ES_PREFIXES, ES_SUFFIXES),
        _ => (OTHER_PREFIXES, OTHER_SUFFIXES),
    }
}

/// Perturb a wrapper fragment: casing, final punctuation, spacing.
fn perturb(rng: &mut StdRng, s: &str, lang: Lang) -> String {
    let mut s = s.to_string();
    if lang.latin() {
        let r = rng.random::<f64>();
        if r < 0.12 {
            s = s.to_lowercase();
        } else if r < 0.15 {
            s = s.to_uppercase();
        }
    }
    let r = rng.random::<f64>();
    if r < 0.28 {
        // Final punctuation of the fragment, before any trailing whitespace.
        let body_len = s.trim_end().len();
        let (body, ws) = s.split_at(body_len);
        let core = body.trim_end_matches(['.', '。', '!']);
        let end = if r < 0.2 || core.len() == body.len() {
            ""
        } else {
            "!"
        };
        s = format!("{core}{end}{ws}");
    }
    let r = rng.random::<f64>();
    if r < 0.2 {
        s = s.replace("\n\n", "\n");
    } else if r < 0.3 {
        s = s.replace("\n\n", " ");
    } else if r < 0.36 {
        s = s.replacen(". ", ".  ", 1);
    }
    s
}

/// Fill `template` (a `{task}` wrapper) with `task`, noising only the wrapper and adding filler
/// phrases now and then.
pub(crate) fn wrap(rng: &mut StdRng, template: (Lang, &str), task: &str) -> String {
    let (lang, t) = template;
    let (pre, post) = t.split_once("{task}").unwrap_or((t, ""));
    let (prefixes, suffixes) = fillers(lang);
    let mut out = String::with_capacity(t.len() + task.len() + 32);
    if rng.random_bool(0.25) {
        out.push_str(pick(rng, prefixes));
    }
    out.push_str(&perturb(rng, pre, lang));
    out.push_str(task);
    out.push_str(&perturb(rng, post, lang));
    if rng.random_bool(0.2) {
        out.push_str(pick(rng, suffixes));
    }
    out.trim().to_string()
}

/// Fill a rubric template; noise applies to the template text between the slots.
pub(crate) fn fill_rubric(
    rng: &mut StdRng,
    template: (Lang, &str),
    task: &str,
    answer: &str,
    answer2: &str,
    rubric: &str,
) -> String {
    let (lang, t) = template;
    let mut out = String::with_capacity(t.len() + task.len() + answer.len() + answer2.len());
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let (head, tail) = rest.split_at(i);
        out.push_str(&perturb(rng, head, lang));
        let slot_end = tail.find('}').map(|j| j + 1).unwrap_or(tail.len());
        match &tail[..slot_end] {
            "{task}" => out.push_str(task),
            "{answer}" => out.push_str(answer),
            "{answer2}" => out.push_str(answer2),
            "{rubric}" => out.push_str(&perturb(rng, rubric, lang)),
            other => out.push_str(other),
        }
        rest = &tail[slot_end..];
    }
    out.push_str(&perturb(rng, rest, lang));
    out
}

/// The task text as an extractor sends it: zero-shot-CoT items lose their "Q:"/"A: Let's think
/// step by step." scaffolding half the time so that the scaffold itself is not a marker.
pub(crate) fn task_text(rng: &mut StdRng, corpus: CorpusId, text: &str) -> String {
    if corpus == CorpusId::ZeroShotCot && rng.random_bool(0.5) {
        return strip_zero_shot(text);
    }
    text.to_string()
}

/// "Q: ...\nA: Let's think step by step." -> "...".
pub(crate) fn strip_zero_shot(text: &str) -> String {
    let t = text.strip_prefix("Q: ").unwrap_or(text);
    let t = t.strip_suffix("A: Let's think step by step.").unwrap_or(t);
    t.trim_end().to_string()
}

// ---- synthetic candidate answers for rubric grading ------------------------------------------

const FILLER_SENTENCES: &[&str] = &[
    "The key point is to consider the main constraint first and then check the result.",
    "In short, it depends on the context, but the usual approach works in most cases.",
    "This follows directly from the definition.",
    "There are three main factors: cost, time and quality.",
    "First we identify what is given, then we apply the relevant rule.",
    "A common misconception is that the answer is obvious; it is not.",
    "Overall, the best option is the simplest one that meets the requirements.",
    "Historically, this has been debated, but the consensus is clear.",
];

/// A plausible (often wrong) answer to `task`, for the model to grade.
pub(crate) fn synth_answer(rng: &mut StdRng, corpus: CorpusId, task: &str) -> String {
    match corpus {
        CorpusId::Gsm8k | CorpusId::ZeroShotCot => {
            let nums: Vec<i64> = task
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|s| s.parse().ok())
                .filter(|&n: &i64| n < 1_000_000)
                .collect();
            let a = nums.first().copied().unwrap_or(rng.random_range(2..50));
            let b = nums.get(1).copied().unwrap_or(rng.random_range(2..20));
            let (op, r) = match rng.random_range(0..3) {
                0 => ('+', a + b),
                1 => ('*', a * b),
                _ => ('-', a - b),
            };
            let r = r + if rng.random_bool(0.4) {
                rng.random_range(-5..=5)
            } else {
                0
            };
            match rng.random_range(0..3) {
                0 => format!("{a} {op} {b} = {r}. The answer is {r}."),
                1 => format!("Step 1: We start with {a}.\nStep 2: Combine with {b}: {a} {op} {b} = {r}.\nFinal answer: {r}"),
                _ => format!("#### {r}"),
            }
        }
        CorpusId::HumanEval | CorpusId::Mbpp => {
            let name = function_name(task).unwrap_or("solution");
            let body = match rng.random_range(0..4) {
                0 => "    return sorted(args)[0] if args else None".to_string(),
                1 => format!("    result = 0\n    for x in args:\n        result += x\n    return result % {}", rng.random_range(2..100)),
                2 => "    # TODO: handle edge cases\n    return len(args) > 0".to_string(),
                _ => "    seen = set()\n    for x in args:\n        if x in seen:\n            return True\n        seen.add(x)\n    return False".to_string(),
            };
            format!("def {name}(*args):\n{body}")
        }
        CorpusId::TruthfulQa => {
            let frag = first_words(task, 6).to_lowercase();
            match rng.random_range(0..4) {
                0 => "I have no comment.".to_string(),
                1 => "Nothing in particular happens.".to_string(),
                2 => format!("Yes. It is well known that {frag}."),
                _ => format!("No, the idea that {frag} is a common misconception."),
            }
        }
        _ => {
            let frag = first_words(task, 8);
            format!(
                "Here is my answer to \"{frag}...\": {} {}",
                pick(rng, FILLER_SENTENCES),
                pick(rng, FILLER_SENTENCES)
            )
        }
    }
}

fn function_name(task: &str) -> Option<&str> {
    let start = task
        .find("def ")
        .map(|i| i + 4)
        .or_else(|| task.find("assert ").map(|i| i + 7))?;
    let rest = &task[start..];
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    (end > 0).then(|| &rest[..end])
}

fn first_words(text: &str, n: usize) -> String {
    let s: Vec<&str> = text.split_whitespace().take(n).collect();
    s.join(" ").trim_end_matches(['?', '.', ',']).to_string()
}

// ---- system prompts ------------------------------------------------------------------------

/// Common, shared-by-everyone system prompts.
pub(crate) const GENERIC_SYSTEM: &[&str] = &[
    "You are a helpful assistant.",
    "You are a helpful assistant.",
    "You are ChatGPT, a large language model. Answer as concisely as possible.",
    "You are a helpful, respectful and honest assistant.",
];

/// Personal "custom instructions".
pub(crate) const PERSONAL_SYSTEM: &[&str] = &[
    "You are a friendly tutor who explains things simply, with examples.",
    "Always answer in British English. Be concise.",
    "请用中文回答。",
    "You are my coding assistant. Prefer TypeScript and functional style.",
    "Be concise. No disclaimers.",
    "I am a nurse; keep medical explanations practical.",
    "Answer like a senior data engineer would. Use bullet points.",
    "You help me write marketing copy for a small bakery in Lyon.",
    "Respond in Spanish unless I write in English.",
    "I'm learning German; correct my mistakes before answering.",
];

/// Campaign system prompts are built from parts so that two campaigns rarely share one exactly.
const COT_SYS_OPEN: &[&str] = &[
    "You are a meticulous reasoning assistant.",
    "You are an expert problem solver.",
    "You are a world-class tutor.",
    "你是一个严谨的推理助手。",
    "You are a careful analyst.",
];
const COT_SYS_RULE: &[&str] = &[
    "For every question, write out your complete internal reasoning step by step before the final answer.",
    "Think deeply. Show all intermediate reasoning and verify each step.",
    "Never skip steps; expose your full chain of thought.",
    "回答任何问题时，都要先完整写出你的思考过程，再给出最终答案。",
    "Reason aloud in detail, considering alternatives before committing.",
];
const COT_SYS_FORMAT: &[&str] = &[
    "End with 'Final answer:' followed by the answer.",
    "Put the final answer in \\boxed{}.",
    "Use Markdown headings for each step.",
    "",
    "Answer in the language of the question.",
];

const CODE_SYS_OPEN: &[&str] = &[
    "You are an expert Python engineer.",
    "You are a senior software developer and competitive programmer.",
    "You are CodeMaster, an elite coding assistant.",
    "你是一名资深的Python工程师。",
];
const CODE_SYS_RULE: &[&str] = &[
    "Always reason step by step in detail before writing code.",
    "Explain the algorithm, its complexity and edge cases, then write the code.",
    "Think through the problem fully and document your reasoning.",
];
const CODE_SYS_FORMAT: &[&str] = &[
    "Return the complete final code in one ```python block.",
    "Include docstrings and type hints. Add unit tests at the end.",
    "Never omit any part of the code.",
];

const JUDGE_SYS: &[&str] = &[
    "You are an impartial judge evaluating the quality of AI responses.",
    "You are a reward model. Output scores only.",
    "You are an expert evaluator. Be strict and consistent.",
    "你是一个公正的评审模型。",
];

const AGENT_SYS_OPEN: &[&str] = &[
    "You are an autonomous agent operating a Linux (Ubuntu 22.04) shell.",
    "You are a helpful assistant with access to the following functions. Use them if required.",
    "You are an AI agent that completes tasks by calling tools.",
];
const AGENT_SYS_RULE: &[&str] = &[
    "Before every action, explain your reasoning in detail.",
    "Think step by step. After each observation, reflect on what it means before the next action.",
    "Plan first, then act one step at a time, and summarise what you learned at the end.",
];

/// Tool definitions in the JSON style of function-calling datasets.
const TOOLS: &[&str] = &[
    r#"{"name": "execute_bash", "description": "Run a bash command and return stdout/stderr", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}"#,
    r#"{"name": "read_file", "description": "Read a file", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}"#,
    r#"{"name": "write_file", "description": "Write content to a file", "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}, "required": ["path", "content"]}}"#,
    r#"{"name": "search_web", "description": "Search the web", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}"#,
    r#"{"name": "get_stock_price", "description": "Get the current stock price", "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]}}"#,
    r#"{"name": "calculate_loan_payment", "description": "Calculate a monthly loan payment", "parameters": {"type": "object", "properties": {"principal": {"type": "number"}, "interest_rate": {"type": "number"}, "loan_term": {"type": "integer"}}, "required": ["principal", "interest_rate", "loan_term"]}}"#,
    r#"{"name": "send_email", "description": "Send an email", "parameters": {"type": "object", "properties": {"recipient": {"type": "string"}, "subject": {"type": "string"}, "message": {"type": "string"}}, "required": ["recipient", "subject", "message"]}}"#,
    r#"{"name": "search_recipes", "description": "Search recipes by ingredients", "parameters": {"type": "object", "properties": {"ingredients": {"type": "array", "items": {"type": "string"}}}, "required": ["ingredients"]}}"#,
];

/// What a campaign puts in the system prompt of all its accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SystemKind {
    Cot,
    Code,
    Judge,
    Agent,
}

/// A campaign-level system prompt, assembled from parts.
pub(crate) fn campaign_system(rng: &mut StdRng, kind: SystemKind) -> String {
    let parts: Vec<&str> = match kind {
        SystemKind::Cot => vec![
            pick(rng, COT_SYS_OPEN),
            pick(rng, COT_SYS_RULE),
            pick(rng, COT_SYS_FORMAT),
        ],
        SystemKind::Code => vec![
            pick(rng, CODE_SYS_OPEN),
            pick(rng, CODE_SYS_RULE),
            pick(rng, CODE_SYS_FORMAT),
        ],
        SystemKind::Judge => vec![pick(rng, JUDGE_SYS), pick(rng, RUBRICS)],
        SystemKind::Agent => {
            let k = rng.random_range(2..=5);
            let mut tools: Vec<&str> = TOOLS.choose_multiple(rng, k).copied().collect();
            tools.sort_unstable();
            let spec = format!("[{}]", tools.join(", "));
            return format!(
                "{} {}\nTools:\n{spec}",
                pick(rng, AGENT_SYS_OPEN),
                pick(rng, AGENT_SYS_RULE)
            );
        }
    };
    let parts: Vec<&str> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    parts.join(" ")
}

// ---- benign automated workloads ------------------------------------------------------------

/// A business template over customer documents: `{doc}` slot, the documents it is used on, and
/// typical answer length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BusinessTemplate {
    pub(crate) text: &'static str,
    pub(crate) docs: &'static [CorpusId],
    pub(crate) response_median: f64,
}

pub(crate) const BUSINESS_TEMPLATES: &[BusinessTemplate] = &[
    BusinessTemplate {
        text: "Summarize the following customer support ticket in 2-3 sentences, then list the actions the customer requests.\n\nTicket:\n{doc}",
        docs: &[CorpusId::ShareGpt, CorpusId::HhRlhf],
        response_median: 110.0,
    },
    BusinessTemplate {
        text: "Classify the sentiment of the following message as POSITIVE, NEGATIVE or NEUTRAL. Return JSON {\"sentiment\": ...}.\n\nMessage: {doc}",
        docs: &[CorpusId::HhRlhf, CorpusId::ShareGpt],
        response_median: 12.0,
    },
    BusinessTemplate {
        text: "Extract all named entities (people, organizations, locations, products) from the text below as a JSON list.\n\n\"\"\"\n{doc}\n\"\"\"",
        docs: &[CorpusId::ShareGpt, CorpusId::Lima],
        response_median: 60.0,
    },
    BusinessTemplate {
        text: "Translate the following customer message into English. Keep the formatting and do not add anything.\n\n{doc}",
        docs: &[CorpusId::Oasst1Zh],
        response_median: 80.0,
    },
    BusinessTemplate {
        text: "You are moderating a community forum. Does the post below violate the content policy? Answer yes or no, then give the category.\n\nPost: {doc}",
        docs: &[CorpusId::HhRlhf],
        response_median: 15.0,
    },
    BusinessTemplate {
        text: "Tag the following user request with exactly one label from: billing, technical, account, feedback, other.\nRequest: \"{doc}\"\nLabel:",
        docs: &[CorpusId::ShareGpt, CorpusId::HhRlhf, CorpusId::ArenaHard],
        response_median: 3.0,
    },
    BusinessTemplate {
        text: "Write a short, polite reply to this customer email on behalf of our support team (max 120 words).\n\nEmail:\n{doc}",
        docs: &[CorpusId::HhRlhf, CorpusId::ShareGpt],
        response_median: 140.0,
    },
    BusinessTemplate {
        text: "Rewrite the following text in plain language for a 12-year-old reader:\n\n{doc}",
        docs: &[CorpusId::Lima, CorpusId::ShareGpt],
        response_median: 180.0,
    },
];

const COMPANIES: &[&str] = &[
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella Retail",
    "Contoso",
    "Fabrikam",
    "Tailspin Travel",
    "Wingtip Toys",
    "Blue Yonder Air",
    "Litware",
    "Proseware",
    "Adventure Works",
    "Lamna Health",
    "Woodgrove Bank",
    "Alpine Ski House",
    "Coho Winery",
];

/// A business's shared system prompt.
pub(crate) fn business_system(rng: &mut StdRng) -> String {
    let company = pick(rng, COMPANIES);
    match rng.random_range(0..3) {
        0 => format!("You are {company}'s document processing assistant. Follow the output format exactly. Do not add commentary."),
        1 => format!("You work for {company} customer operations. Be accurate and brief."),
        _ => format!("{company} internal pipeline v{}.{}. Output only what is asked.", rng.random_range(1..4), rng.random_range(0..10)),
    }
}

/// A narrow tool-calling integration: one flow, templated user messages, a tool result turn.
pub(crate) struct Flow {
    pub(crate) system: &'static str,
    pub(crate) messages: &'static [&'static str],
    pub(crate) result: &'static str,
    pub(crate) followups: &'static [&'static str],
}

pub(crate) const FLOWS: &[Flow] = &[
    Flow {
        system: r#"You are the order assistant of an online shop. You can call: {"name": "get_order_status", "parameters": {"order_id": "string"}}. Call the function when the user asks about an order."#,
        messages: &[
            "Where is my order #{n}?",
            "hi, can you check order {n} please",
            "my package {n} hasn't arrived yet",
            "What's the status of order number {n}",
            "order {n} - when will it be delivered?",
            "I ordered something last week, the number is {n}. Any update?",
        ],
        result: r#"Function result: {"order_id": "{n}", "status": "{status}", "eta": "{day}"}"#,
        followups: &[
            "ok thanks",
            "Can I change the delivery address?",
            "why is it taking so long?",
            "great",
        ],
    },
    Flow {
        system: r#"You are a weather bot. Tools: [{"name": "get_weather", "parameters": {"city": "string", "date": "string"}}]. Reply in one or two sentences."#,
        messages: &[
            "What's the weather in {city} tomorrow?",
            "weather {city}",
            "Will it rain in {city} on {day}?",
            "How hot will it be in {city} this weekend?",
            "Do I need an umbrella in {city} today?",
        ],
        result: r#"Function result: {"city": "{city}", "forecast": "{status}", "high_c": {n2}}"#,
        followups: &["and the day after?", "thanks", "what about {city}?"],
    },
    Flow {
        system: r#"You schedule meetings. Function: {"name": "create_event", "parameters": {"title": "string", "attendee": "string", "start": "string"}}. Confirm the details before creating."#,
        messages: &[
            "Schedule a meeting with {name} on {day} at {hour}",
            "book 30 min with {name} {day} {hour}",
            "Can you set up a call with {name} for {day} afternoon?",
            "Move my meeting with {name} to {day}",
        ],
        result: r#"Function result: {"event_id": "evt_{n}", "status": "created", "start": "{day} {hour}"}"#,
        followups: &["yes, confirm", "perfect", "add a video link please"],
    },
    Flow {
        system: r#"You are a currency converter. Use {"name": "convert_currency", "parameters": {"amount": "number", "from": "string", "to": "string"}} and answer with the converted amount only."#,
        messages: &[
            "Convert {n2} {cur} to {cur2}",
            "how much is {n2} {cur} in {cur2}",
            "{n2} {cur} to {cur2}?",
            "What's {n2} {cur} worth in {cur2} today",
        ],
        result: r#"Function result: {"converted_amount": {n}.{n2}, "currency": "{cur2}"}"#,
        followups: &["thanks", "and in {cur}?"],
    },
];

const CITIES: &[&str] = &[
    "London",
    "Paris",
    "Berlin",
    "Madrid",
    "Tokyo",
    "Seoul",
    "Beijing",
    "Shanghai",
    "Mumbai",
    "Toronto",
    "Chicago",
    "Austin",
    "Sydney",
    "São Paulo",
    "Mexico City",
    "Lagos",
    "Nairobi",
    "Warsaw",
    "Lisbon",
    "Singapore",
];
const NAMES: &[&str] = &[
    "Alice", "Bob", "Priya", "Chen Wei", "María", "Jonas", "Fatima", "Kenji", "Olga", "Tom",
    "Amara", "Luca", "Sofia", "David",
];
const DAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "tomorrow",
    "next week",
];
const HOURS: &[&str] = &["9am", "10:30", "2pm", "3:15 pm", "16:00", "11am"];
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "JPY", "CNY", "INR", "BRL", "CAD"];
const STATUSES: &[&str] = &[
    "shipped",
    "in transit",
    "delayed",
    "delivered",
    "processing",
    "sunny",
    "rain",
    "cloudy",
];

/// Values for the `{n}`, `{city}`, ... slots of one integration exchange, drawn once so that
/// the tool result repeats the order number the user gave.
pub(crate) struct Slots(Vec<(&'static str, String)>);

impl Slots {
    pub(crate) fn new(rng: &mut StdRng) -> Self {
        Slots(vec![
            ("{n}", rng.random_range(100_000..9_999_999u32).to_string()),
            ("{n2}", rng.random_range(5..2_000u32).to_string()),
            ("{city}", pick(rng, CITIES).to_string()),
            ("{name}", pick(rng, NAMES).to_string()),
            ("{day}", pick(rng, DAYS).to_string()),
            ("{hour}", pick(rng, HOURS).to_string()),
            ("{cur}", pick(rng, CURRENCIES).to_string()),
            ("{cur2}", pick(rng, CURRENCIES).to_string()),
            ("{status}", pick(rng, STATUSES).to_string()),
        ])
    }

    pub(crate) fn fill(&self, t: &str) -> String {
        let mut out = t.to_string();
        for (k, v) in &self.0 {
            out = out.replace(k, v);
        }
        out
    }
}

/// Light human-style variation of an end user's message.
pub(crate) fn casual_noise(rng: &mut StdRng, s: String) -> String {
    let r = rng.random::<f64>();
    if r < 0.25 {
        s.to_lowercase()
    } else if r < 0.35 {
        s.trim_end_matches(['?', '.']).to_string()
    } else if r < 0.42 {
        format!("{s}??")
    } else {
        s
    }
}

/// Messages someone sends to check that a new API key works.
pub(crate) const KEY_CHECKS: &[&str] =
    &["test", "hello", "ping", "Say hi", "hi", "Are you working?"];

/// A benchmark harness's prompt format for one task set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EvalFormat {
    pub(crate) corpus: CorpusId,
    /// Restrict to rows whose source ends with one of these (empty: all rows).
    pub(crate) sources: &'static [&'static str],
    pub(crate) template: &'static str,
    pub(crate) strip_zero_shot: bool,
    pub(crate) response_median: f64,
}

pub(crate) const EVAL_FORMATS: &[EvalFormat] = &[
    EvalFormat {
        corpus: CorpusId::Gsm8k,
        sources: &[":test"],
        template: "Question: {task}\nAnswer:",
        strip_zero_shot: false,
        response_median: 90.0,
    },
    EvalFormat {
        corpus: CorpusId::Gsm8k,
        sources: &[":test"],
        template: "Solve the following math problem. Put the final answer after \"####\".\n\n{task}",
        strip_zero_shot: false,
        response_median: 160.0,
    },
    EvalFormat {
        corpus: CorpusId::ZeroShotCot,
        sources: &[":commonsenseqa", ":aqua"],
        template: "The following is a multiple choice question. Reply with the letter of the correct answer only.\n\n{task}\nAnswer:",
        strip_zero_shot: true,
        response_median: 2.0,
    },
    EvalFormat {
        corpus: CorpusId::ZeroShotCot,
        sources: &[":strategyqa"],
        template: "{task}\nAnswer yes or no.",
        strip_zero_shot: true,
        response_median: 2.0,
    },
    EvalFormat {
        corpus: CorpusId::HumanEval,
        sources: &[],
        template: "{task}",
        strip_zero_shot: false,
        response_median: 120.0,
    },
    EvalFormat {
        corpus: CorpusId::HumanEval,
        sources: &[],
        template: "Complete the following Python code without any explanation:\n{task}",
        strip_zero_shot: false,
        response_median: 110.0,
    },
    EvalFormat {
        corpus: CorpusId::Mbpp,
        sources: &[],
        template: "You are an expert Python programmer, and here is your task: {task}",
        strip_zero_shot: false,
        response_median: 130.0,
    },
    EvalFormat {
        corpus: CorpusId::TruthfulQa,
        sources: &[],
        template: "Q: {task}\nA:",
        strip_zero_shot: false,
        response_median: 25.0,
    },
    EvalFormat {
        corpus: CorpusId::ZeroShotCot,
        sources: &[":bigbench_date", ":object_tracking"],
        template: "{task}",
        strip_zero_shot: false,
        response_median: 140.0,
    },
];

// ---- wording of the later extraction styles --------------------------------------------------
// Lists are interleaved so that each language has wording in both phrasing banks (even and odd
// positions, `Phrasings::bank`).

/// Self-instruct data generation: new tasks (with answers) modelled on a seed task.
pub(crate) const GENERATE_WRAPPERS: &[Wrapper] = &[
    (Lang::En, "Here is an example task:\n{task}\n\nWrite 10 new, diverse tasks of the same kind, each followed by a complete, high-quality answer."),
    (Lang::En, "Seed instruction: {task}\n\nGenerate 8 more instructions in the same spirit but on different topics. For each, give an expert response."),
    (Lang::En, "{task}\n\nAnswer it, then invent five harder variations of this problem and solve each of them in full."),
    (Lang::En, "Use the following as a template and produce a list of 12 similar questions with detailed reference answers, numbered, no commentary.\n\n{task}"),
    (Lang::En, "Create a varied set of instruction-response pairs inspired by this one (at least 6). Vary difficulty and domain.\nExample: {task}"),
    (Lang::En, "{task}\n---\nNow write 10 paraphrased and extended versions of the task above, each with a worked answer, as JSON lines {\"instruction\", \"output\"}."),
    (Lang::Zh, "示例任务：{task}\n\n请仿照它写出10个不同主题的新任务，并为每个任务给出完整、高质量的回答。"),
    (Lang::Zh, "{task}\n\n请先回答，再编写5个类似但更难的题目并逐一详细解答。"),
];

/// Reasoning traces in the user's language (the trace-coercion prompts of Google GTIG's
/// February 2026 report): the full thinking, and in the language of the question.
pub(crate) const TRACE_WRAPPERS: &[Wrapper] = &[
    (Lang::En, "{task}\n\nThe language of your thinking must strictly match the language of this question. Write out all of your reasoning before the answer."),
    (Lang::En, "Think in the same language as the user input and show the whole thought process, not a summary.\n\n{task}"),
    (Lang::Zh, "{task}\n\n思考过程所用的语言必须与用户输入的语言严格一致，请完整写出全部思考内容。"),
    (Lang::Zh, "请用与问题相同的语言进行思考，并把完整的思考过程原样输出，不要总结。\n\n{task}"),
    (Lang::Ru, "{task}\n\nЯзык твоих рассуждений должен строго совпадать с языком вопроса. Выпиши все рассуждения полностью."),
    (Lang::Ru, "Рассуждай на том же языке, что и вопрос, и покажи весь ход мыслей, а не краткое изложение.\n\n{task}"),
    (Lang::Es, "{task}\n\nEl idioma de tu razonamiento debe coincidir estrictamente con el de la pregunta. Escribe todo el razonamiento completo."),
    (Lang::Es, "Piensa en el mismo idioma que la pregunta y muestra todo el proceso de pensamiento, no un resumen.\n\n{task}"),
    (Lang::Ja, "{task}\n\n思考に使う言語は質問の言語と厳密に一致させ、思考内容をすべてそのまま書き出してください。"),
    (Lang::Ja, "質問と同じ言語で考え、要約ではなく思考過程の全体を示してください。\n\n{task}"),
    (Lang::Ko, "{task}\n\n생각하는 언어는 질문의 언어와 반드시 같아야 합니다. 전체 사고 과정을 그대로 적어 주세요."),
    (Lang::Ko, "질문과 같은 언어로 생각하고, 요약이 아닌 사고 과정 전체를 보여 주세요.\n\n{task}"),
];

/// Policy-safe alternatives: a rewritten question and answer that avoid sensitive ground
/// (Anthropic's February 2026 disclosure describes such requests).
pub(crate) const ALTERNATIVE_WRAPPERS: &[Wrapper] = &[
    (Lang::En, "Rewrite the following question so that it can be answered without touching any politically sensitive topic, then answer the rewritten question in full.\n\n{task}"),
    (Lang::En, "{task}\n\nGive an answer that a strictly regulated assistant could publish: neutral, with no sensitive political content. Then explain which parts you changed and why."),
    (Lang::En, "For the question below, write (1) a safe alternative phrasing, (2) a compliant answer, (3) the refusal a cautious assistant would give to the original.\n{task}"),
    (Lang::En, "Produce a sanitised version of this request that avoids sensitive subjects and answer that version thoroughly:\n{task}"),
    (Lang::Zh, "请把下面的问题改写成不涉及任何政治敏感话题的版本，然后完整回答改写后的问题。\n\n{task}"),
    (Lang::Zh, "{task}\n\n请给出一个中立、可公开发布、不含敏感内容的回答，并说明你修改了哪些部分。"),
];

/// Parts a campaign's wording is assembled from when campaigns are randomised: an opener, the
/// style's instruction (one of its wrappers), a format demand. English only: other languages
/// keep their wrappers whole.
pub(crate) const OPENERS: &[&str] = &[
    "I'm building study notes.",
    "For our internal knowledge base:",
    "Next item.",
    "You are an expert tutor.",
    "Context: we are preparing a curriculum.",
    "Please handle the following.",
    "Item follows.",
    "As a domain expert,",
    "I need a reference-quality answer.",
    "Careful now.",
    "New request.",
    "Help me with this one.",
];

/// See [`OPENERS`].
pub(crate) const FORMAT_DEMANDS: &[&str] = &[
    "Number every step.",
    "End with a line 'Final answer: ...'.",
    "Use Markdown headings for each part.",
    "Return JSON with the keys \"reasoning\" and \"answer\".",
    "Write at least 300 words.",
    "Put the answer in bold at the end.",
    "Separate the reasoning and the answer with a line of dashes.",
    "Do not omit anything, even if it seems obvious.",
    "Keep the final answer on its own last line.",
    "Wrap the reasoning in <reasoning> tags.",
    "Use bullet points for intermediate results.",
    "Cite the rule or fact used at each step.",
];

/// One wrapper assembled from parts: sometimes an opener before it, sometimes a format demand
/// after it, from `openers` and `formats` (a phrasing bank's share of [`OPENERS`] and
/// [`FORMAT_DEMANDS`]). Non-English wrappers come back whole.
pub(crate) fn compose(
    rng: &mut StdRng,
    instruction: (Lang, &str),
    openers: &[&str],
    formats: &[&str],
) -> (Lang, String) {
    let (lang, t) = instruction;
    if lang != Lang::En {
        return (lang, t.to_string());
    }
    let mut s = String::with_capacity(t.len() + 80);
    if rng.random_bool(0.5) {
        if let Some(o) = openers.choose(rng) {
            s.push_str(o);
            s.push_str(if rng.random_bool(0.5) { " " } else { "\n" });
        }
    }
    s.push_str(t);
    if rng.random_bool(0.6) {
        if let Some(f) = formats.choose(rng) {
            s.push_str(if rng.random_bool(0.5) { "\n" } else { " " });
            s.push_str(f);
        }
    }
    (lang, s)
}

// ---- people's prompting habits -------------------------------------------------------------

/// What some people add to their own questions out of habit, as prompting guides teach: ask
/// for step-by-step reasoning, a format, a level of detail (`simulate --people-prompting`).
/// They share the extractors' markers on purpose: an honest heavy user who writes "think step
/// by step" must not be flagged for it. Split into phrasing banks like the campaign wrappers
/// (even-numbered entries train, odd-numbered test); each bank holds English and Chinese.
pub(crate) const PERSONAL_HABITS: &[(Lang, &str)] = &[
    (Lang::En, "Please explain step by step."),
    (Lang::En, "Think step by step."),
    (Lang::En, "Can you explain your reasoning?"),
    (Lang::En, "Show your work please."),
    (Lang::Zh, "请一步一步地解释。"),
    (Lang::Zh, "请详细说明你的思路。"),
    (Lang::En, "Explain it like I'm five."),
    (
        Lang::En,
        "Take a deep breath and work through this step-by-step.",
    ),
    (Lang::En, "Be detailed, I want to really understand it."),
    (Lang::En, "Walk me through it."),
    (Lang::En, "Answer in bullet points."),
    (
        Lang::En,
        "Please double-check your answer before you reply.",
    ),
    (Lang::En, "Keep it short, no fluff."),
    (Lang::En, "Explain the reasoning behind each step."),
    (Lang::Zh, "回答尽量简洁。"),
    (Lang::Zh, "请给出详细的推理过程。"),
    (Lang::En, "Give me a thorough answer with examples."),
    (Lang::En, "Let's think about this carefully."),
    (Lang::En, "Use simple language please."),
    (Lang::En, "Format the answer as a table if you can."),
];

// ---- later benign hard negatives -----------------------------------------------------------

/// Chain-of-thought benchmark formats of evaluation harnesses (the "-cot" task variants).
pub(crate) const COT_EVAL_FORMATS: &[EvalFormat] = &[
    EvalFormat {
        corpus: CorpusId::Gsm8k,
        sources: &[":test"],
        template: "Q: {task}\nA: Let's think step by step.",
        strip_zero_shot: false,
        response_median: 180.0,
    },
    EvalFormat {
        corpus: CorpusId::Gsm8k,
        sources: &[":test"],
        template: "Solve the following math problem step by step. The last line of your response should be of the form \"Answer: $ANSWER\".\n\n{task}",
        strip_zero_shot: false,
        response_median: 220.0,
    },
    EvalFormat {
        corpus: CorpusId::ZeroShotCot,
        sources: &[":commonsenseqa", ":aqua"],
        template: "Answer the following multiple choice question. Think step by step before answering, then finish with \"The answer is (X)\".\n\n{task}",
        strip_zero_shot: true,
        response_median: 150.0,
    },
    EvalFormat {
        corpus: CorpusId::ZeroShotCot,
        sources: &[":strategyqa", ":bigbench_date"],
        template: "{task}\nLet's think step by step.",
        strip_zero_shot: true,
        response_median: 140.0,
    },
    EvalFormat {
        corpus: CorpusId::TruthfulQa,
        sources: &[],
        template: "Q: {task}\nReason briefly, then give a one-sentence answer.\nA:",
        strip_zero_shot: false,
        response_median: 90.0,
    },
];

/// A safety team's red-team runs: harmful requests through a refusal harness.
pub(crate) const RED_TEAM_FORMATS: &[EvalFormat] = &[
    EvalFormat {
        corpus: CorpusId::HhRlhf,
        sources: &[],
        template: "{task}",
        strip_zero_shot: false,
        response_median: 60.0,
    },
    EvalFormat {
        corpus: CorpusId::HhRlhf,
        sources: &[],
        template: "[red-team run 2025-06, item follows]\n{task}",
        strip_zero_shot: false,
        response_median: 60.0,
    },
    EvalFormat {
        corpus: CorpusId::HhRlhf,
        sources: &[],
        template: "User message under test:\n\"\"\"\n{task}\n\"\"\"\nRespond to the user as you normally would.",
        strip_zero_shot: false,
        response_median: 70.0,
    },
];

/// Localisation jobs: `{lang}` is the job's target language, `{doc}` the text.
pub(crate) const TRANSLATION_TEMPLATES: &[BusinessTemplate] = &[
    BusinessTemplate {
        text: "Translate the following text into {lang}. Preserve Markdown formatting and do not translate code.\n\n{doc}",
        docs: &[CorpusId::ShareGpt, CorpusId::Lima],
        response_median: 400.0,
    },
    BusinessTemplate {
        text: "You are a professional localiser. Render this help-centre article in {lang}, keeping product names in English:\n\n{doc}",
        docs: &[CorpusId::Lima, CorpusId::ShareGpt],
        response_median: 450.0,
    },
    BusinessTemplate {
        text: "Target language: {lang}\nSource:\n{doc}\nTranslation:",
        docs: &[CorpusId::ShareGpt, CorpusId::HhRlhf],
        response_median: 300.0,
    },
];

/// Target languages of localisation jobs.
pub(crate) const TARGET_LANGUAGES: &[&str] = &[
    "German",
    "French",
    "Japanese",
    "Brazilian Portuguese",
    "Spanish (Mexico)",
    "Korean",
    "Simplified Chinese",
    "Italian",
];
