use candle_core::{Device, Tensor};

use super::*;
use crate::features::{self, Accounts};
use crate::run::{RequestRecord, RowInfo, RowShingles};

/// One request of a hand-made log.
struct R {
    account: &'static str,
    ts_s: i64,
    text: String,
    ip: Option<&'static str>,
    ua: Option<&'static str>,
    system: Option<&'static str>,
}

fn r(account: &'static str, ts_s: i64, text: impl Into<String>) -> R {
    R {
        account,
        ts_s,
        text: text.into(),
        ip: None,
        ua: None,
        system: None,
    }
}

impl R {
    fn net(mut self, ip: &'static str, ua: &'static str) -> Self {
        self.ip = Some(ip);
        self.ua = Some(ua);
        self
    }
    fn system(mut self, s: &'static str) -> Self {
        self.system = Some(s);
        self
    }
}

/// A small deterministic unit vector for topic `t` (dimension 16): topics are orthogonal.
fn topic(t: usize) -> Vec<f32> {
    let mut v = vec![0f32; 16];
    v[t % 16] = 1.0;
    v
}

/// Everything `analyse` needs, built from requests as `embed` would: one row per distinct
/// text, with the embedding `emb_of(text)` and the text's shingles.
struct Log {
    accounts: Accounts,
    local: features::LocalFeatures,
    shingles: RowShingles,
}

fn log(reqs: &[R], emb_of: impl Fn(&str) -> Vec<f32>) -> Log {
    let mut rows: Vec<&str> = Vec::new();
    let mut recs = Vec::new();
    for q in reqs {
        let row = match rows.iter().position(|t| *t == q.text) {
            Some(i) => i,
            None => {
                rows.push(&q.text);
                rows.len() - 1
            }
        };
        recs.push(Ok(RequestRecord {
            line: 0,
            account_id: q.account.into(),
            timestamp_ms: q.ts_s * 1000,
            row: row as u32,
            conversation_id: None,
            system_prompt_sha: q.system.map(Into::into),
            response_tokens: None,
            model: None,
            ip: q.ip.map(Into::into),
            user_agent: q.ua.map(Into::into),
        }));
    }
    let accounts = Accounts::from_records(recs.into_iter()).unwrap();
    let dim = emb_of(rows[0]).len();
    let v: Vec<f32> = rows.iter().flat_map(|t| emb_of(t)).collect();
    let emb = Tensor::from_vec(v, (rows.len(), dim), &Device::Cpu).unwrap();
    let info = RowInfo {
        tokens: vec![20; rows.len()],
        chars: rows.iter().map(|t| t.len() as u32).collect(),
        markers: vec![0; rows.len()],
    };
    let local = features::local(&emb, &info, &accounts, features::Normal::Log).unwrap();
    let mut shingles = RowShingles::default();
    for t in &rows {
        shingles.push(&crate::shingles::shingles(t)).unwrap();
    }
    Log {
        accounts,
        local,
        shingles,
    }
}

impl Log {
    /// `analyse` with each account's neighbours = every other account, by behaviour cosine.
    fn analyse(&self) -> Linking {
        self.analyse_with(&CampaignParams::default())
    }

    fn analyse_with(&self, params: &CampaignParams) -> Linking {
        let n = self.accounts.len();
        let neighbors = (0..n)
            .map(|a| {
                let mut ns: Vec<(usize, f32)> = (0..n)
                    .filter(|&b| b != a)
                    .map(|b| (b, dot(self.local.behaviour(a), self.local.behaviour(b))))
                    .collect();
                ns.sort_by(|x, y| y.1.total_cmp(&x.1));
                ns
            })
            .collect();
        analyse(
            &self.accounts,
            &self.local,
            &self.shingles,
            neighbors,
            params,
        )
        .unwrap()
    }

    fn id(&self, a: &str) -> usize {
        self.accounts.ids.iter().position(|x| x == a).unwrap()
    }
}

const COT: &str = "Explain your full reasoning step by step before giving the final answer.";

/// Items of task `t`: `n` different questions on one topic.
fn item(t: usize, i: usize) -> String {
    let subjects = ["apples", "trains", "rivers", "planets", "poems", "taxes"];
    format!(
        "How many {} does case number {i} involve when {} {}?",
        subjects[t % 6],
        ["we", "they", "you"][i % 3],
        ["count twice", "split evenly", "add one more", "wait a day"][i % 4]
    )
}

/// The topic a text is about (which subject word it names), for embeddings.
fn topic_of(text: &str) -> Vec<f32> {
    let subjects = ["apples", "trains", "rivers", "planets", "poems", "taxes"];
    let t = subjects.iter().position(|s| text.contains(s)).unwrap_or(15);
    topic(t)
}

/// A campaign of four accounts that wrap *different topics* in one chain-of-thought wrapper,
/// from one datacenter /24, under one system prompt, plus two people: one campaign, linked by
/// form and infrastructure, not by topic; the people stay out.
#[test]
fn form_and_infrastructure_link_a_campaign_across_topics() {
    let mut reqs = Vec::new();
    let ips = ["45.10.20.5", "45.10.20.6", "45.10.20.7", "45.10.20.8"];
    for (k, acc) in ["c0", "c1", "c2", "c3"].into_iter().enumerate() {
        for i in 0..5 {
            let text = format!("{COT}\n\n{}", item(k, i));
            reqs.push(
                r(acc, 60 * i as i64 + k as i64, text)
                    .net(ips[k], "python-httpx/0.27.0")
                    .system("sweeper system prompt"),
            );
        }
    }
    let human = [
        "can you recommend a good book about the history of rome",
        "what should i cook tonight with leftover rice and eggs",
        "my cat keeps scratching the sofa, any ideas?",
    ];
    for (i, t) in human.iter().enumerate() {
        reqs.push(r("h0", 5000 + i as i64 * 900, *t).net("98.1.2.3", "Firefox"));
        reqs.push(r("h1", 9000 + i as i64 * 700, format!("{t} please")).net("77.4.5.6", "Safari"));
    }
    let log = log(&reqs, topic_of);
    let linking = log.analyse();
    assert_eq!(linking.groups.len(), 1, "{:?}", linking.groups);
    let c = &linking.groups[0];
    let members: Vec<usize> = ["c0", "c1", "c2", "c3"].iter().map(|a| log.id(a)).collect();
    assert_eq!(c.members, members);
    // Every pair linked, by form and by infrastructure; none covers the same ground.
    assert_eq!((c.links, c.form_links, c.infra_links), (6, 6, 6));
    assert_eq!(c.same_ground_links, 0);
    assert_eq!(c.shared_system_prompt_accounts, 4);
    let l = &linking.links[members[0]][0];
    assert!(l.by_form && l.by_infra && !l.by_behaviour, "{l:?}");
    assert!(l.similarity < 0.1, "different topics: {l:?}");
    assert!(l.form.jaccard > 0.7 && l.form.shared >= 11, "{l:?}");
    assert!(
        l.infra.networks == 1 && l.infra.system_prompts == 1,
        "{l:?}"
    );
    for h in ["h0", "h1"] {
        assert!(linking.links[log.id(h)].is_empty());
        assert_eq!(linking.group_of[log.id(h)], None);
    }
    let f = |a: usize, name: &str| linking.row(a)[cross(name)];
    let a = members[0];
    assert!((f(a, "log_campaign_size") - 5f32.ln()).abs() < 1e-6);
    assert!((f(a, "log_form_links") - 4f32.ln()).abs() < 1e-6);
    assert!((f(a, "log_infra_links") - 4f32.ln()).abs() < 1e-6);
    assert_eq!(f(a, "campaign_form_link_share"), 1.0);
    assert_eq!(f(a, "campaign_infra_link_share"), 1.0);
    assert_eq!(f(log.id("h0"), "log_links"), 0.0);
    assert_eq!(
        feature_matrix(&log.local, &linking).len(),
        log.accounts.len() * feature_names(log.local.dim).len()
    );
}

/// Two teams run the same benchmark (identical items: the same topic, full prompt coverage)
/// with their own harness wording, from their own networks: not linked. Nor are two people
/// who both say "step by step" (a shared idiom is not a template), nor two strangers who paste
/// the same public template from their own networks and clients.
#[test]
fn topic_alone_or_a_shared_idiom_does_not_link() {
    // One benchmark: six untemplated questions about apples.
    let bench = [
        "how many apples fit in a wooden crate",
        "an orchard yields apples daily, how long until it has a thousand",
        "the price of apples rose by a third; what was the old price",
        "three friends share apples unevenly, who gets the most",
        "a basket loses apples each hour; when is it empty",
        "compare the weight of red and green apples in grams",
    ];
    let mut reqs = Vec::new();
    for (i, q) in bench.iter().enumerate() {
        reqs.push(
            r(
                "lab0",
                i as i64 * 30,
                format!("{q}\nAnswer with the final number only, nothing else."),
            )
            .net("34.1.1.1", "python-requests/2.31.0"),
        );
        reqs.push(
            r(
                "lab1",
                100_000 + i as i64 * 45,
                format!("Respond tersely with no working shown at all: {q}"),
            )
            .net("52.9.9.9", "python-requests/2.31.0"),
        );
        let t = [
            "solve x squared minus four",
            "derive the area of a circle",
            "integrate sine of x",
        ];
        reqs.push(
            r(
                "s0",
                7000 + i as i64 * 900,
                format!("{} step by step", t[i % 3]),
            )
            .net("81.1.1.1", "Chrome"),
        );
        reqs.push(
            r(
                "s1",
                9000 + i as i64 * 800,
                format!("step by step, {}", t[(i + 1) % 3]),
            )
            .net("90.2.2.2", "Chrome"),
        );
    }
    // Two strangers pasting the same public chain-of-thought template, in the same hours, from
    // their own networks and clients: the same form, nothing else shared, not linked.
    for i in 0..5 {
        let (x, y) = (item(1, i), item(2, i));
        reqs.push(
            r("copy0", 20_000 + i as i64 * 60, format!("{COT}\n\n{x}")).net("99.1.1.1", "Edge"),
        );
        reqs.push(
            r("copy1", 20_030 + i as i64 * 60, format!("{COT}\n\n{y}")).net("88.2.2.2", "Opera"),
        );
    }
    let log = log(&reqs, topic_of);
    let (lab0, lab1) = (log.id("lab0"), log.id("lab1"));
    // Same topic: the index would put them side by side.
    assert!(dot(log.local.behaviour(lab0), log.local.behaviour(lab1)) > 0.99);
    let linking = log.analyse();
    assert!(linking.groups.is_empty(), "{:?}", linking.groups);
    // The strangers' template link is recorded but forms nothing; nobody else is linked.
    let (c0, c1) = (log.id("copy0"), log.id("copy1"));
    for (a, ls) in linking.links.iter().enumerate() {
        if a == c0 || a == c1 {
            assert_eq!(ls.len(), 1, "{ls:?}");
            assert!(
                ls[0].by_template && !ls[0].by_form && !ls[0].by_infra,
                "{ls:?}"
            );
        } else {
            assert!(ls.is_empty(), "{ls:?}");
        }
    }
    // The labs' signatures are their own instructions, not the shared items.
    let sigs = Signatures::new(&log.accounts, &log.shingles, &FormParams::default());
    assert!(sigs.of(lab0).len() >= 4 && sigs.of(lab1).len() >= 4);
    assert_eq!(sigs.overlap(lab0, lab1).shared, 0);
    let copied = sigs.overlap(log.id("copy0"), log.id("copy1"));
    assert!(copied.shares_form(&FormParams::default()), "{copied:?}");
    let idiom = sigs.overlap(log.id("s0"), log.id("s1"));
    assert!(
        idiom.shared >= 1 && !idiom.shares_form(&FormParams::default()),
        "{idiom:?}"
    );
}

/// A campaign of four accounts (one wrapper, one /24, one client) and a fifth account that
/// sends the same wrapper in the same minutes from a home address with a client of its own:
/// no footprint in common, so it is linked by template only and joins the group through its
/// four template links; two strangers with one template between them form no group.
#[test]
fn a_template_alone_attaches_an_account_to_a_group_but_never_forms_one() {
    let mut reqs = Vec::new();
    for (k, acc) in ["c0", "c1", "c2", "c3", "straggler"]
        .into_iter()
        .enumerate()
    {
        for i in 0..5 {
            let text = format!("{COT}\n\n{}", item(k, i));
            let q = r(acc, 60 * i as i64 + k as i64, text);
            reqs.push(if acc == "straggler" {
                q.net("73.200.14.9", "okhttp/4.12.0")
            } else {
                q.net("45.10.20.5", "python-httpx/0.27.0")
            });
        }
    }
    for i in 0..5 {
        let text = format!(
            "Answer thoroughly and cite sources for every claim you make.\n{}",
            item(5, i)
        );
        reqs.push(r("copy0", 50_000 + i as i64 * 60, text.clone()).net("99.1.1.1", "Edge"));
        reqs.push(r("copy1", 50_020 + i as i64 * 60, text + " ok").net("88.2.2.2", "Opera"));
    }
    let log = log(&reqs, topic_of);
    let linking = log.analyse();
    assert_eq!(linking.groups.len(), 1, "{:?}", linking.groups);
    let c = &linking.groups[0];
    let s = log.id("straggler");
    assert!(c.members.contains(&s), "{:?}", c.members);
    assert_eq!(
        (c.size, c.attached, c.form_links, c.template_links),
        (5, 1, 6, 4)
    );
    assert!(linking.links[s]
        .iter()
        .all(|l| l.by_template && !l.by_form && !l.by_infra));
    for x in ["copy0", "copy1"] {
        assert_eq!(linking.group_of[log.id(x)], None);
        assert!(linking.links[log.id(x)].iter().all(|l| l.by_template));
    }
}

/// A campaign of five accounts on one /24, and three siblings that drew one home address of
/// their own between them, each with a client of its own: the three form a group by the same
/// wrapper and that address (no infrastructure link: the address is all they share), but their
/// template links lead to the campaign, which is larger, so they join it. Two groups of equal
/// size with one template between them stay apart.
#[test]
fn a_small_group_whose_template_links_lead_to_a_larger_one_joins_it() {
    let mut reqs = Vec::new();
    let campaign = ["c0", "c1", "c2", "c3", "c4", "f0", "f1", "f2"];
    let own_clients = ["okhttp/4.12.0", "axios/1.7.2", "curl/8.5.0"];
    for (k, acc) in campaign.into_iter().enumerate() {
        for i in 0..5 {
            let text = format!("{COT}\n\n{}", item(k, i));
            let q = r(acc, 60 * i as i64 + k as i64, text);
            reqs.push(if acc.starts_with('f') {
                q.net("73.200.14.9", own_clients[k - 5])
            } else {
                q.net("45.10.20.5", "python-httpx/0.27.0")
            });
        }
    }
    let pair = ["p0", "p1", "p2", "q0", "q1", "q2"];
    for (k, acc) in pair.into_iter().enumerate() {
        for i in 0..5 {
            let text = format!(
                "Answer thoroughly and cite sources for every claim you make.\n{}",
                item(k, i)
            );
            let q = r(acc, 90_000 + 60 * i as i64 + k as i64, text);
            reqs.push(if acc.starts_with('p') {
                q.net("99.1.1.1", "Edge/120")
            } else {
                q.net("88.2.2.2", "Opera/100")
            });
        }
    }
    let log = log(&reqs, topic_of);
    let linking = log.analyse();
    let sizes: Vec<(usize, usize)> = linking
        .groups
        .iter()
        .map(|g| (g.size, g.attached))
        .collect();
    assert_eq!(sizes, [(8, 3), (3, 0), (3, 0)], "{:?}", linking.groups);
    let g = linking.group_of[log.id("c0")];
    assert!(campaign.iter().all(|a| linking.group_of[log.id(a)] == g));
    let (p, q) = (
        linking.group_of[log.id("p0")],
        linking.group_of[log.id("q0")],
    );
    assert!(p.is_some() && q.is_some() && p != q);
    // Without the join (a bar no fragment meets) the three stay a group of their own.
    let params = CampaignParams {
        attach_links: 100,
        ..CampaignParams::default()
    };
    let apart = log.analyse_with(&params);
    let sizes: Vec<usize> = apart.groups.iter().map(|g| g.size).collect();
    assert_eq!(sizes, [5, 3, 3, 3], "{:?}", apart.groups);
}

/// Campaign A on one /24 under one system prompt, with its own client and wrapper; campaign B on home addresses with
/// another client and wrapper; one of A's accounts happens to run B's client and sends B's
/// wrapper in B's hours. Its form links to B rest on a client build alone, which may make a
/// group of accounts with nothing stronger (B) but never joins one: two groups, not one.
#[test]
fn a_form_on_a_shared_client_alone_never_joins_a_group() {
    let mut reqs = Vec::new();
    let b_wrapper = "Answer thoroughly and cite sources for every claim you make.";
    let homes = ["73.1.1.1", "81.2.2.2", "92.3.3.3", "101.4.4.4"];
    for (k, acc) in ["a0", "a1", "a2", "a3", "bridge"].into_iter().enumerate() {
        for i in 0..5 {
            let (text, ua) = if acc == "bridge" {
                (format!("{b_wrapper}\n{}", item(k, i)), "node-fetch/1.0")
            } else {
                (
                    format!("{COT}\n\n{}", item(k, i)),
                    "anthropic-python/0.34.2",
                )
            };
            let q = r(acc, 60 * i as i64 + k as i64, text).net("45.10.20.5", ua);
            reqs.push(q.system("You are the DataGen worker."));
        }
    }
    for (k, acc) in ["b0", "b1", "b2", "b3"].into_iter().enumerate() {
        for i in 0..5 {
            let text = format!("{b_wrapper}\n{}", item(k + 1, i + 5));
            reqs.push(r(acc, 60 * i as i64 + k as i64 + 7, text).net(homes[k], "node-fetch/1.0"));
        }
    }
    let log = log(&reqs, topic_of);
    let linking = log.analyse();
    let bridge = log.id("bridge");
    assert!(
        linking.links[bridge]
            .iter()
            .any(|l| l.by_form_on_client() && l.other == log.id("b0")),
        "{:?}",
        linking.links[bridge]
    );
    let sizes: Vec<usize> = linking.groups.iter().map(|g| g.size).collect();
    assert_eq!(sizes, [5, 4], "{:?}", linking.groups);
    assert_eq!(linking.group_of[bridge], linking.group_of[log.id("a0")]);
    assert_ne!(
        linking.group_of[log.id("b0")],
        linking.group_of[log.id("a0")]
    );
}

#[test]
fn infrastructure_weighs_rare_tokens_and_never_links_on_a_user_agent_alone() {
    let mut reqs = Vec::new();
    // 20 accounts share a stock system prompt and one SDK user agent; "a00"/"a01" also share a
    // /24 (two addresses in it); "a05"/"a06" share only the user agent and the stock prompt.
    let names: Vec<&'static str> = (0..20)
        .map(|i| &*Box::leak(format!("a{i:02}").into_boxed_str()))
        .collect();
    let ips: Vec<&'static str> = (0..20)
        .map(|i| &*Box::leak(format!("{}.{}.7.9", 100 + i, i).into_boxed_str()))
        .collect();
    for (i, &a) in names.iter().enumerate() {
        let ip = match i {
            0 => "203.0.113.10",
            1 => "203.0.113.99",
            _ => ips[i],
        };
        reqs.push(
            r(a, i as i64 * 1000, format!("question {i}"))
                .net(ip, "OpenAI/Python 1.40.6")
                .system("You are a helpful assistant."),
        );
    }
    let log = log(&reqs, |_| topic(0));
    let fp = Footprints::new(&log.accounts);
    let params = InfraParams::default();
    let (p0, p1, q0, q1) = (log.id("a00"), log.id("a01"), log.id("a05"), log.id("a06"));
    let same_net = fp.overlap(p0, p1);
    assert_eq!(
        (
            same_net.networks,
            same_net.user_agents,
            same_net.system_prompts
        ),
        (1, 1, 1)
    );
    // The /24 weighs ln(20/2); the stock prompt and the SDK, used by all 20, weigh nothing.
    assert!((same_net.overlap - 1.0).abs() < 1e-6, "{same_net:?}");
    assert!(same_net.links(&params));
    let ua_only = fp.overlap(q0, q1);
    assert_eq!((ua_only.networks, ua_only.user_agents), (0, 1));
    assert!(
        ua_only.overlap < 1e-6 && !ua_only.links(&params),
        "{ua_only:?}"
    );
    // The /24 proposes the pair (user agents propose none; the stock prompt's posting list
    // pairs everyone along the ring, but none of those pairs links).
    assert!(fp
        .candidate_pairs(&params)
        .contains(&(p0 as u32, p1 as u32)));
    let linking = log.analyse();
    let linked: Vec<(usize, usize)> = (0..log.accounts.len())
        .flat_map(|a| linking.links[a].iter().map(move |l| (a, l.other)))
        .filter(|(a, b)| a < b)
        .collect();
    assert_eq!(linked, vec![(p0, p1)]);
}

#[test]
fn sync_is_the_share_of_five_minute_buckets_active_together() {
    let mut reqs = Vec::new();
    for i in 0..4 {
        // x and y alternate within the same five minutes; z works another day.
        reqs.push(r("x", i * 3600, format!("x{i}")));
        reqs.push(r("y", i * 3600 + 60, format!("y{i}")));
        reqs.push(r("z", 86_400 + i * 3600, format!("z{i}")));
    }
    reqs.push(r("y", 99_999, "one more"));
    let log = log(&reqs, |_| topic(0));
    let fp = Footprints::new(&log.accounts);
    let (x, y, z) = (log.id("x"), log.id("y"), log.id("z"));
    assert_eq!(fp.sync(x, y), 1.0, "x's 4 buckets all shared; y has 5");
    assert_eq!(fp.sync(y, x), 1.0);
    assert_eq!(fp.sync(x, z), 0.0);
    assert_eq!(fp.co_activity(x, y), 1.0);
    assert_eq!(fp.co_activity(x, z), 0.0);
}

/// A campaign of 300 accounts with one wrapper: LSH proposes at most `ring` pairs per account
/// and band, yet every account ends up in the one campaign.
#[test]
fn lsh_pairs_stay_linear_and_keep_a_large_campaign_connected() {
    let mut reqs = Vec::new();
    let names: Vec<&'static str> = (0..300)
        .map(|i| &*Box::leak(format!("s{i:03}").into_boxed_str()))
        .collect();
    // Each account on its own residential network, all with one client build (which is what
    // corroborates their shared form: a user agent alone would never link them).
    let ips: Vec<&'static str> = (0..300)
        .map(|i| &*Box::leak(format!("{}.{}.{}.7", 20 + i / 250, i % 250, i % 7).into_boxed_str()))
        .collect();
    for (k, &a) in names.iter().enumerate() {
        for i in 0..3 {
            let text = format!("{COT} {}", item(k, i + 3 * k));
            reqs.push(r(a, (k * 3 + i) as i64, text).net(ips[k], "python-httpx/0.27.0"));
        }
    }
    let log = log(&reqs, topic_of);
    let params = FormParams::default();
    let sigs = Signatures::new(&log.accounts, &log.shingles, &params);
    let pairs = sigs.candidate_pairs(&params);
    assert!(
        pairs.len() <= 300 * params.ring * params.bands,
        "{}",
        pairs.len()
    );
    assert!(pairs.len() >= 299);
    let linking = log.analyse();
    assert_eq!(linking.groups.len(), 1);
    assert_eq!(linking.groups[0].size, 300);
}

fn cross(name: &str) -> usize {
    CROSS_FEATURES.iter().position(|n| *n == name).unwrap()
}

/// A noisy unit vector near topic `t`, different for every text (16-d).
fn noisy_topic(text: &str) -> Vec<f32> {
    let mut v = topic_of(text);
    let mut h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |acc, b| {
        (acc ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    for x in v.iter_mut() {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        *x += ((h >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.8;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// 40 users (`u00`..`u39`) of one endpoint, 12 prompts each about topic 0, pushed to `reqs`.
fn topic_users(reqs: &mut Vec<R>) -> Vec<&'static str> {
    let users: Vec<String> = (0..40).map(|u| format!("u{u:02}")).collect();
    let users: Vec<&'static str> = users.into_iter().map(|s| &*s.leak()).collect();
    for (u, acc) in users.iter().enumerate() {
        for i in 0..12 {
            reqs.push(r(acc, (u * 5000 + i * 700) as i64, item(0, u * 100 + i)));
        }
    }
    users
}

/// An endpoint whose 40 users ask about one topic, and 4 unlinked accounts (each on its own
/// network) that send the same kind of prompts with a quarter about another topic hidden
/// among them: the tail test finds all four, and none of the users, where the whole-sample
/// MMD is diluted by the three quarters.
#[test]
fn a_quarter_of_off_task_prompts_stands_out_in_the_tail_test() {
    let mut reqs = Vec::new();
    let users = topic_users(&mut reqs);
    let nets = ["45.10.20.5", "81.2.69.160", "203.0.113.7", "198.51.100.23"];
    for (k, acc) in ["m0", "m1", "m2", "m3"].into_iter().enumerate() {
        for i in 0..12 {
            let t = if i % 4 == 0 { 3 } else { 0 };
            reqs.push(
                r(
                    acc,
                    (k * 90_000 + i * 3_000) as i64,
                    item(t, 9_000 + k * 100 + i),
                )
                .net(nets[k], "Mozilla/5.0"),
            );
        }
    }
    let log = log(&reqs, noisy_topic);
    let f = |a: &str, name: crate::features::Local| log.local.row(log.id(a))[name];
    use crate::features::Local::{ShiftTail, ShiftTailLogZ};
    for m in ["m0", "m1", "m2", "m3"] {
        assert!(
            f(m, ShiftTail) >= 0.2 && f(m, ShiftTailLogZ) >= 6f32.ln(),
            "{m}: tail share {} log z {}",
            f(m, ShiftTail),
            f(m, ShiftTailLogZ)
        );
    }
    let most = users
        .iter()
        .map(|u| f(u, ShiftTailLogZ))
        .fold(0f32, f32::max);
    assert!(most < 6f32.ln(), "a user's tail log z {most}");
}

/// An endpoint whose 40 users ask about one topic, and 4 accounts (one campaign on one /24)
/// that ask it about another: the four are shifted (each alone and as a group), the users
/// are not, because the trimming pass keeps the four out of the reference.
#[test]
fn accounts_querying_another_distribution_are_shifted_and_the_endpoints_users_are_not() {
    let mut reqs = Vec::new();
    let users = topic_users(&mut reqs);
    for (k, acc) in ["x0", "x1", "x2", "x3"].into_iter().enumerate() {
        for i in 0..12 {
            reqs.push(
                r(acc, (k * 60 + i * 300) as i64, item(3, k * 100 + i))
                    .net("45.10.20.5", "python-httpx/0.27.0"),
            );
        }
    }
    let log = log(&reqs, noisy_topic);
    let z = |a: &str| log.local.row(log.id(a))[crate::features::Local::ShiftLogZ];
    let p = |a: &str| log.local.row(log.id(a))[crate::features::Local::ShiftLogP];
    for x in ["x0", "x1", "x2", "x3"] {
        assert!(
            p(x) >= 2.0 && z(x) >= 2.0,
            "{x}: log p {} log z {}",
            p(x),
            z(x)
        );
    }
    let mut user_p: Vec<f32> = users.iter().map(|u| p(u)).collect();
    user_p.sort_by(f32::total_cmp);
    assert!(user_p[20] < 1.0, "median user -log10 p {}", user_p[20]);
    let linking = log.analyse();
    let c = linking
        .groups
        .iter()
        .find(|c| c.members.contains(&log.id("x0")))
        .expect("the four are linked");
    assert!(c.shift_p <= 0.01 && c.shift_z > 3.0, "{c:?}");
}
