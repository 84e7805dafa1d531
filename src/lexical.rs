//! Lexical markers of a prompt: cheap, language-aware signals of how extraction traffic asks.
//!
//! Each distinct prompt text gets a bitmask of [`Marker`]s, computed once at embed time and
//! stored per embedding row, so later stages never re-read the log's text. The phrase lists
//! cover English, Chinese, Russian, Spanish, French, German, Japanese and Korean, because
//! reported campaigns wrap the same elicitation in many languages. A marker is a hint, never a
//! verdict: benign users ask for step-by-step answers too, which is why the classifier weighs
//! marker *rates* per account together with everything else.

/// One kind of lexical signal. The discriminant is the bit position in a row's mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Marker {
    /// Asks for the reasoning itself: step by step, chain of thought, show your work.
    Reasoning = 0,
    /// Uses the model as a grader: rubric, score 1-10, evaluate the response.
    Grading = 1,
    /// Demands an output format: JSON, a fixed template, "respond only with".
    Format = 2,
    /// Asks for long, detailed, comprehensive answers.
    Long = 3,
    /// Asks the model to generate tasks, examples or training data.
    DataGeneration = 4,
    /// Asks who the model is or who made it.
    Identity = 5,
    /// Carries code (fences, definitions).
    Code = 6,
    /// Dataset-style framing: "Q: … A:", "Question:", numbered answer options.
    DatasetForm = 7,
}

impl Marker {
    pub const ALL: [Marker; 8] = [
        Marker::Reasoning,
        Marker::Grading,
        Marker::Format,
        Marker::Long,
        Marker::DataGeneration,
        Marker::Identity,
        Marker::Code,
        Marker::DatasetForm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Marker::Reasoning => "reasoning",
            Marker::Grading => "grading",
            Marker::Format => "format",
            Marker::Long => "long_answer",
            Marker::DataGeneration => "data_generation",
            Marker::Identity => "identity",
            Marker::Code => "code",
            Marker::DatasetForm => "dataset_form",
        }
    }

    pub fn bit(self) -> u32 {
        1 << self as u32
    }

    fn phrases(self) -> &'static [&'static str] {
        match self {
            Marker::Reasoning => &[
                "step by step",
                "step-by-step",
                "chain of thought",
                "chain-of-thought",
                "reasoning",
                "think through",
                "think carefully",
                "show your work",
                "explain your thinking",
                "thought process",
                "walk me through",
                "let's think",
                "一步一步",
                "逐步",
                "推理",
                "思考过程",
                "思路",
                "шаг за шагом",
                "рассужд",
                "пошагово",
                "paso a paso",
                "razonamiento",
                "razona",
                "étape par étape",
                "raisonnement",
                "schritt für schritt",
                "denkprozess",
                "ステップ",
                "段階的",
                "推論",
                "단계별",
                "추론",
            ],
            Marker::Grading => &[
                "rubric",
                "grade the",
                "grade this",
                "score the",
                "score this",
                "rate the",
                "rate this",
                "on a scale of",
                "scale from 1",
                "1-10",
                "1 to 10",
                "evaluate the response",
                "evaluate the following answer",
                "which response is better",
                "assign a score",
                "评分",
                "打分",
                "评分标准",
                "评估",
                "оцени",
                "оценку",
                "критери",
                "calificación",
                "califica",
                "puntuación",
                "rúbrica",
                "évalue",
                "barème",
                "bewerte",
                "bewertung",
                "採点",
                "評価",
                "채점",
                "평가",
            ],
            Marker::Format => &[
                "json",
                "yaml",
                "output format",
                "respond only with",
                "answer only with",
                "in the following format",
                "use the format",
                "markdown table",
                "return only",
                "格式",
                "формат",
                "formato",
                "format de",
                "im format",
                "形式で",
                "형식",
            ],
            Marker::Long => &[
                "in detail",
                "detailed",
                "comprehensive",
                "thorough",
                "at least 500 words",
                "at least 1000 words",
                "elaborate",
                "exhaustive",
                "详细",
                "详尽",
                "подробно",
                "развернут",
                "detallad",
                "exhaustiv",
                "détaillé",
                "ausführlich",
                "詳しく",
                "詳細",
                "자세히",
                "상세",
            ],
            Marker::DataGeneration => &[
                "generate 10",
                "generate 20",
                "generate 50",
                "generate a list of",
                "training data",
                "dataset",
                "instruction-response",
                "instruction tuning",
                "diverse tasks",
                "new tasks",
                "create examples",
                "synthetic",
                "生成",
                "数据集",
                "сгенерируй",
                "набор данных",
                "genera ",
                "conjunto de datos",
                "génère",
                "jeu de données",
            ],
            Marker::Identity => &[
                "who are you",
                "who made you",
                "who created you",
                "what model are you",
                "which model are you",
                "your name",
                "are you chatgpt",
                "are you claude",
                "你是谁",
                "你是什么模型",
                "谁开发",
                "谁创造",
                "кто ты",
                "кто тебя",
                "quién eres",
                "qui es-tu",
                "wer bist du",
                "あなたは誰",
                "누구",
            ],
            Marker::Code => &[
                "```",
                "def ",
                "function ",
                "#include",
                "import ",
                "class ",
                "return ",
                "=>",
                "fn ",
            ],
            Marker::DatasetForm => &[
                "q:",
                "a:",
                "question:",
                "answer:",
                "options:",
                "answer choices",
                "(a)",
                "a)",
                "问题：",
                "答案：",
                "вопрос:",
                "pregunta:",
            ],
        }
    }
}

/// The marker bitmask of one prompt (case-insensitive phrase matching).
pub fn markers(text: &str) -> u32 {
    let lower = text.to_lowercase();
    Marker::ALL
        .iter()
        .filter(|m| m.phrases().iter().any(|p| lower.contains(p)))
        .fold(0, |mask, m| mask | m.bit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(text: &str, m: Marker) -> bool {
        markers(text) & m.bit() != 0
    }

    #[test]
    fn finds_markers_in_several_languages() {
        assert!(has("Solve this. Think step by step.", Marker::Reasoning));
        assert!(has("请一步一步地推理", Marker::Reasoning));
        assert!(has("Реши задачу шаг за шагом", Marker::Reasoning));
        assert!(has("Resuélvelo paso a paso", Marker::Reasoning));
        assert!(has(
            "Grade this answer on a scale of 1 to 10",
            Marker::Grading
        ));
        assert!(has("请根据评分标准打分", Marker::Grading));
        assert!(has("Respond only with JSON", Marker::Format));
        assert!(has("Explain in detail", Marker::Long));
        assert!(has(
            "Generate 20 diverse tasks for instruction tuning",
            Marker::DataGeneration
        ));
        assert!(has("你是谁？", Marker::Identity));
        assert!(has("```python\nprint(1)\n```", Marker::Code));
        assert!(has("Q: What is 2+2?\nA:", Marker::DatasetForm));
    }

    #[test]
    fn plain_requests_have_no_markers() {
        assert_eq!(markers("what are some pranks with a pen i can do?"), 0);
        assert_eq!(markers("Recommend a good book for a long flight"), 0);
    }

    #[test]
    fn case_does_not_matter_and_bits_are_distinct() {
        assert_eq!(markers("STEP BY STEP"), Marker::Reasoning.bit());
        let all: u32 = Marker::ALL.iter().map(|m| m.bit()).sum();
        assert_eq!(all, 0xff);
    }
}
