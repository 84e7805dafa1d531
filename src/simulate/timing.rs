//! When requests happen: human rhythms, automated schedules and a rate-limited load balancer.
//!
//! Timing is half of what separates people from scripts, so it is modelled explicitly rather
//! than drawn uniformly. A person has a time zone, a chronotype (when in their local day they
//! are awake and at a keyboard), days off, sessions, and think time between turns that grows
//! with what they read and type. Scripts run in waves at a steady rate; a sybil network
//! additionally spreads its queue over many accounts, each held under a per-account rate limit,
//! which is what makes every single account look small and unremarkable.

use chrono::{DateTime, Datelike};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

pub(crate) const SEC: i64 = 1_000;
pub(crate) const MIN: i64 = 60 * SEC;
pub(crate) const HOUR: i64 = 60 * MIN;
pub(crate) const DAY: i64 = 24 * HOUR;

/// The simulated period.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) days: u32,
    /// Day of the week of the first day, 0 = Monday.
    start_weekday: u32,
}

impl Window {
    pub(crate) fn new(start_ms: i64, days: u32) -> Self {
        let start_weekday = DateTime::from_timestamp_millis(start_ms)
            .map(|t| t.weekday().num_days_from_monday())
            .unwrap_or(0);
        Window {
            start_ms,
            end_ms: start_ms + days as i64 * DAY,
            days,
            start_weekday,
        }
    }

    /// UTC milliseconds of local `hour` (may exceed 24) on day `day` for a UTC offset in minutes.
    pub(crate) fn local_ms(&self, day: u32, hour: f64, tz_min: i32) -> i64 {
        self.start_ms + day as i64 * DAY + (hour * HOUR as f64) as i64 - tz_min as i64 * MIN
    }

    pub(crate) fn is_weekend(&self, day: u32) -> bool {
        (self.start_weekday + day) % 7 >= 5
    }

    pub(crate) fn len_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    pub(crate) fn contains(&self, t: i64) -> bool {
        t >= self.start_ms && t < self.end_ms
    }
}

// ---- distributions -------------------------------------------------------------------------

/// Log-normal with the given median and shape.
pub(crate) fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    median * (sigma * z).exp()
}

pub(crate) fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    mean + sd * z
}

pub(crate) fn poisson(rng: &mut StdRng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    Poisson::new(lambda)
        .map(|d| d.sample(rng) as u64)
        .unwrap_or(0)
}

/// A log-normal count, rounded and clamped to `lo..=hi`.
pub(crate) fn count(rng: &mut StdRng, median: f64, sigma: f64, lo: usize, hi: usize) -> usize {
    (lognormal(rng, median, sigma).round() as usize).clamp(lo, hi)
}

/// Index drawn with probability proportional to `weights` (all zero: the first).
pub(crate) fn weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return 0;
    }
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Seconds to milliseconds, at least `min_s`.
pub(crate) fn secs(s: f64, min_s: f64) -> i64 {
    (s.max(min_s) * SEC as f64) as i64
}

// ---- people --------------------------------------------------------------------------------

/// UTC offsets in minutes, weighted roughly by where API users are.
const TIME_ZONES: [(i32, f64); 14] = [
    (-480, 0.12),
    (-420, 0.04),
    (-360, 0.06),
    (-300, 0.14),
    (-180, 0.05),
    (0, 0.07),
    (60, 0.12),
    (120, 0.06),
    (180, 0.04),
    (330, 0.08),
    (480, 0.12),
    (540, 0.06),
    (600, 0.02),
    (420, 0.02),
];

pub(crate) fn time_zone(rng: &mut StdRng) -> i32 {
    let w: Vec<f64> = TIME_ZONES.iter().map(|z| z.1).collect();
    TIME_ZONES[weighted(rng, &w)].0
}

/// When in the local day someone is active.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Chronotype {
    Morning,
    Office,
    Evening,
    NightOwl,
}

impl Chronotype {
    pub(crate) fn random(rng: &mut StdRng) -> Self {
        match weighted(rng, &[0.2, 0.45, 0.25, 0.1]) {
            0 => Chronotype::Morning,
            1 => Chronotype::Office,
            2 => Chronotype::Evening,
            _ => Chronotype::NightOwl,
        }
    }

    /// A local hour of activity (7.0 .. 27.0; past 24 is after midnight).
    pub(crate) fn hour(self, rng: &mut StdRng) -> f64 {
        let modes: &[(f64, f64, f64)] = match self {
            Chronotype::Morning => &[(8.5, 1.2, 0.6), (13.0, 2.0, 0.3), (19.0, 1.5, 0.1)],
            Chronotype::Office => &[(10.5, 1.5, 0.45), (15.0, 1.5, 0.4), (21.0, 1.5, 0.15)],
            Chronotype::Evening => &[(13.0, 2.0, 0.25), (20.5, 1.5, 0.55), (23.0, 1.0, 0.2)],
            Chronotype::NightOwl => &[(15.0, 2.0, 0.25), (22.5, 1.5, 0.4), (25.5, 1.2, 0.35)],
        };
        let w: Vec<f64> = modes.iter().map(|m| m.2).collect();
        let (mean, sd, _) = modes[weighted(rng, &w)];
        normal(rng, mean, sd).clamp(6.5, 27.5)
    }
}

/// A person's habits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rhythm {
    pub(crate) tz_min: i32,
    pub(crate) chrono: Chronotype,
    /// Probability of using the API on a working day, and on a weekend day.
    pub(crate) weekday_p: f64,
    pub(crate) weekend_p: f64,
    /// Mean number of extra sessions on an active day.
    pub(crate) extra_sessions: f64,
    /// Mean number of extra conversations in a session.
    pub(crate) extra_convs: f64,
}

impl Rhythm {
    /// An occasional user.
    pub(crate) fn casual(rng: &mut StdRng) -> Self {
        let weekday_p = rng.random_range(0.15..0.7);
        Rhythm {
            tz_min: time_zone(rng),
            chrono: Chronotype::random(rng),
            weekday_p,
            weekend_p: weekday_p * rng.random_range(0.2..1.3),
            extra_sessions: rng.random_range(0.0..0.8),
            extra_convs: rng.random_range(0.1..1.0),
        }
    }

    /// Someone who uses the API most days, several times a day.
    pub(crate) fn heavy(rng: &mut StdRng) -> Self {
        let weekday_p = rng.random_range(0.75..0.98);
        Rhythm {
            tz_min: time_zone(rng),
            chrono: Chronotype::random(rng),
            weekday_p,
            weekend_p: weekday_p * rng.random_range(0.3..1.0),
            extra_sessions: rng.random_range(1.5..4.5),
            extra_convs: rng.random_range(0.8..2.5),
        }
    }
}

/// Session start times over the window, sorted; at least one.
pub(crate) fn session_starts(rng: &mut StdRng, w: &Window, r: &Rhythm) -> Vec<i64> {
    let mut out = Vec::new();
    for day in 0..w.days {
        let p = if w.is_weekend(day) {
            r.weekend_p
        } else {
            r.weekday_p
        };
        if !rng.random_bool(p.clamp(0.0, 1.0)) {
            continue;
        }
        for _ in 0..1 + poisson(rng, r.extra_sessions) {
            let t = w.local_ms(day, r.chrono.hour(rng), r.tz_min);
            if w.contains(t) {
                out.push(t);
            }
        }
    }
    if out.is_empty() {
        let day = rng.random_range(0..w.days);
        let t = w.local_ms(day, r.chrono.hour(rng), r.tz_min);
        out.push(t.clamp(w.start_ms, w.end_ms - HOUR));
    }
    out.sort_unstable();
    out
}

/// What the timing of one human turn depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TurnShape {
    pub(crate) prompt_chars: usize,
    pub(crate) response_tokens: u64,
}

/// Seconds between sending one turn and sending the next: reading the answer, then typing (or
/// pasting) the next prompt, with the odd long interruption.
pub(crate) fn think_time(rng: &mut StdRng, answer_tokens: u64, next_chars: usize) -> i64 {
    let read = answer_tokens as f64 / rng.random_range(5.0..14.0) * rng.random_range(0.15..1.0);
    let write = if next_chars > 300 {
        lognormal(rng, 10.0, 0.6)
    } else {
        next_chars as f64 / rng.random_range(2.0..5.5)
    };
    let mut s = read + write + lognormal(rng, 5.0, 0.8);
    if rng.random_bool(0.05) {
        s += lognormal(rng, 20.0 * 60.0, 0.7);
    }
    secs(s, 3.0)
}

/// Lay conversations out in the sessions of a person with rhythm `r`. Returns, for each placed
/// conversation (a prefix of `convs`), the timestamps of its turns, strictly increasing.
pub(crate) fn human_timeline(
    rng: &mut StdRng,
    w: &Window,
    r: &Rhythm,
    convs: &[Vec<TurnShape>],
) -> Vec<Vec<i64>> {
    let starts = session_starts(rng, w, r);
    let mut out: Vec<Vec<i64>> = Vec::with_capacity(convs.len());
    let mut end = i64::MIN;
    for s in starts {
        if out.len() == convs.len() {
            break;
        }
        let mut t = if end == i64::MIN {
            s
        } else {
            s.max(end + secs(lognormal(rng, 600.0, 0.8), 60.0))
        };
        if t >= w.end_ms {
            break;
        }
        let n = 1 + poisson(rng, r.extra_convs) as usize;
        for conv in convs.iter().skip(out.len()).take(n) {
            let mut times = Vec::with_capacity(conv.len());
            for (i, turn) in conv.iter().enumerate() {
                if i > 0 {
                    t += think_time(rng, conv[i - 1].response_tokens, turn.prompt_chars);
                }
                times.push(t);
            }
            out.push(times);
            t += secs(lognormal(rng, 120.0, 1.0), 10.0);
        }
        end = t;
    }
    out
}

/// Times of events with a mean of `per_day` a day following a local-day profile (the end users
/// of an integration, one person's odd requests); sorted.
pub(crate) fn daytime_events(
    rng: &mut StdRng,
    w: &Window,
    tz_min: i32,
    chrono: Chronotype,
    per_day: f64,
    weekend_factor: f64,
) -> Vec<i64> {
    let mut out = Vec::new();
    for day in 0..w.days {
        let rate = if w.is_weekend(day) {
            per_day * weekend_factor
        } else {
            per_day
        };
        for _ in 0..poisson(rng, rate) {
            let t = w.local_ms(day, chrono.hour(rng), tz_min) + rng.random_range(0..MIN);
            if w.contains(t) {
                out.push(t);
            }
        }
    }
    out.sort_unstable();
    out
}

/// `n` times at local daytime on random days of the window (weekend days kept with probability
/// `weekend_p`); sorted. Unlike [`daytime_events`] the count is exact.
pub(crate) fn spread_daytime(
    rng: &mut StdRng,
    w: &Window,
    tz_min: i32,
    chrono: Chronotype,
    n: usize,
    weekend_p: f64,
) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut t = None;
        for _ in 0..20 {
            let day = rng.random_range(0..w.days);
            if w.is_weekend(day) && !rng.random_bool(weekend_p.clamp(0.0, 1.0)) {
                continue;
            }
            let c = w.local_ms(day, chrono.hour(rng), tz_min) + rng.random_range(0..MIN);
            if w.contains(c) {
                t = Some(c);
                break;
            }
        }
        out.push(t.unwrap_or_else(|| w.start_ms + rng.random_range(0..w.len_ms())));
    }
    out.sort_unstable();
    out
}

// ---- scripts -------------------------------------------------------------------------------

/// `n` arrival times between `t0` and `t1` in `waves` bursts (an operator starting a script
/// several times); sorted.
pub(crate) fn wave_arrivals(
    rng: &mut StdRng,
    t0: i64,
    t1: i64,
    n: usize,
    waves: usize,
) -> Vec<i64> {
    let waves = waves.max(1);
    let span = (t1 - t0).max(HOUR);
    let cover = rng.random_range(0.35..0.9);
    let wave_len = ((span as f64 * cover) / waves as f64).max(HOUR as f64 / 2.0) as i64;
    let shares: Vec<f64> = (0..waves).map(|_| lognormal(rng, 1.0, 0.4)).collect();
    let total: f64 = shares.iter().sum();
    let mut out = Vec::with_capacity(n);
    let mut left = n;
    for (i, share) in shares.iter().enumerate() {
        let k = if i + 1 == waves {
            left
        } else {
            ((n as f64 * share / total).round() as usize).min(left)
        };
        left -= k;
        let ws = t0 + rng.random_range(0..(span - wave_len).max(1));
        for _ in 0..k {
            out.push(ws + rng.random_range(0..wave_len));
        }
    }
    out.sort_unstable();
    out
}

/// One account of a load-balanced pool.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// When the account was created (or first put into rotation).
    pub(crate) join_ms: i64,
    /// Tasks it will still take.
    pub(crate) quota: usize,
    /// Its rate limit, as the smallest gap between requests.
    pub(crate) min_gap_ms: i64,
    pub(crate) free_at: i64,
}

/// Hand each task (arriving at `arrivals[i]`, keeping an account busy for `durations[i]`) to an
/// account that has joined, has quota left and is past its rate limit, choosing among those in
/// proportion to remaining quota; a task waits for the first account to free up when none is.
/// Returns `(slot, start time)` per task, in input order.
pub(crate) fn load_balance(
    rng: &mut StdRng,
    arrivals: &[i64],
    durations: &[i64],
    slots: &mut [Slot],
) -> Vec<(usize, i64)> {
    let mut out = Vec::with_capacity(arrivals.len());
    let mut weights = vec![0.0; slots.len()];
    for (i, &arrive) in arrivals.iter().enumerate() {
        if slots.iter().all(|s| s.quota == 0) {
            // Quotas were meant to sum to the task count; if not, keep going without them.
            slots.iter_mut().for_each(|s| s.quota = 1);
        }
        let ready = |s: &Slot| s.join_ms.max(s.free_at);
        let earliest = slots
            .iter()
            .filter(|s| s.quota > 0)
            .map(ready)
            .min()
            .unwrap_or(arrive);
        let t = arrive.max(earliest);
        for (w, s) in weights.iter_mut().zip(slots.iter()) {
            *w = if s.quota > 0 && ready(s) <= t {
                s.quota as f64
            } else {
                0.0
            };
        }
        let k = weighted(rng, &weights);
        let slot = &mut slots[k];
        slot.quota = slot.quota.saturating_sub(1);
        slot.free_at = t + durations.get(i).copied().unwrap_or(0) + slot.min_gap_ms;
        out.push((k, t));
    }
    out
}
