# What people do in every simulated week of the evaluation, training and test alike (sourced
# by train_default.sh, evaluate.sh, probe_eval.sh and incident_eval.sh): 15% of a person's
# conversations are an item of a public task set (homework maths, a coding exercise, trivia),
# and 30% of people habitually add a reasoning, detail or format request to their questions
# ("Think step by step."), as honest users do; 30% of people reach the API from changing
# networks (a phone carrier's /16, or VPN exits shared with other users). Without these, only
# extractors ask task items, reason step by step or rotate addresses, and a model learns to
# flag people for it (docs/evaluation.md, sessions 18 and 21).
# shellcheck disable=SC2034
PEOPLE_ARGS="--honest-task-share 0.15 --people-prompting 0.3 --address-churn 0.3"
