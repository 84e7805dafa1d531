//! Request metadata that is not the prompt: model names, user agents, IP addresses.
//!
//! These fields are where real abuse investigations often start (shared proxy subnets, one SDK
//! version across a sybil network), but they are also easy to fake, so the simulator gives
//! extraction campaigns only a partial fingerprint: a campaign shares a few datacenter /24s or
//! rotates through residential addresses, and most (not all) of its accounts use one client.
//! Benign accounts draw from the same pools, so no single field separates the classes.

use std::rc::Rc;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::text::{GENERIC_SYSTEM, PERSONAL_SYSTEM};
use super::timing::weighted;

/// Model names an account can ask for: a large and a small general model, a reasoning model and
/// an older snapshot.
pub(crate) const MODEL_LARGE: &str = "nova-large-2025-05";
pub(crate) const MODEL_SMALL: &str = "nova-small-2025-05";
pub(crate) const MODEL_REASONER: &str = "nova-reasoner-1";
pub(crate) const MODEL_OLD: &str = "nova-large-2025-01";
pub(crate) const MODELS: [&str; 4] = [MODEL_LARGE, MODEL_SMALL, MODEL_REASONER, MODEL_OLD];

/// API client libraries.
pub(crate) const SDK_UAS: &[&str] = &[
    "OpenAI/Python 1.35.3",
    "OpenAI/Python 1.40.6",
    "OpenAI/Python 1.51.0",
    "OpenAI/NodeJS/4.52.0",
    "anthropic-python/0.34.2",
    "python-requests/2.31.0",
    "python-requests/2.32.3",
    "python-httpx/0.27.0",
    "aiohttp/3.9.5",
    "axios/1.7.2",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "curl/8.5.0",
    "langchain-openai/0.1.20",
];

/// Chat front-ends that people use with their own API key.
pub(crate) const PERSONAL_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "ChatBox/1.4.2 (Electron)",
    "LibreChat/0.7.4",
    "OpenAI/Python 1.40.6",
    "python-requests/2.31.0",
    "Raycast/1.79.0 (macOS)",
    "Obsidian-Copilot/2.5.3",
];

/// First octets of public address blocks used for made-up addresses (no reserved ranges).
pub(crate) const FIRST_OCTETS: [u8; 30] = [
    23, 31, 37, 45, 46, 62, 73, 77, 81, 85, 90, 98, 101, 103, 110, 112, 115, 121, 139, 151, 171,
    176, 182, 185, 188, 194, 203, 212, 217, 223,
];

/// A home or mobile address, sometimes IPv6.
pub(crate) fn residential_ip(rng: &mut StdRng) -> String {
    if rng.random_bool(0.12) {
        return format!(
            "2a02:{:x}:{:x}:{:x}::{:x}",
            rng.random_range(0x100..0xffffu32),
            rng.random_range(0..0xffffu32),
            rng.random_range(0..0xffffu32),
            rng.random_range(1..0xffffu32)
        );
    }
    let a = *FIRST_OCTETS.choose(rng).unwrap_or(&98);
    format!(
        "{a}.{}.{}.{}",
        rng.random_range(0..=255u8),
        rng.random_range(0..=255u8),
        rng.random_range(1..=254u8)
    )
}

/// A datacenter /24, as its first three octets.
pub(crate) fn subnet(rng: &mut StdRng) -> [u8; 3] {
    [
        *FIRST_OCTETS.choose(rng).unwrap_or(&45),
        rng.random_range(0..=255u8),
        rng.random_range(0..=255u8),
    ]
}

/// One host inside a /24.
pub(crate) fn ip_in(rng: &mut StdRng, net: [u8; 3]) -> String {
    format!(
        "{}.{}.{}.{}",
        net[0],
        net[1],
        net[2],
        rng.random_range(2..=254u8)
    )
}

/// Pick from a static list (never empty by construction).
pub(crate) fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("")
}

/// How one account talks to the API: its addresses, clients, models and system prompt.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) ips: Vec<Rc<str>>,
    /// Probability that a request comes from a fresh residential address (rotating proxy).
    pub(crate) rotate: f64,
    pub(crate) uas: Vec<&'static str>,
    pub(crate) models: Vec<(&'static str, f64)>,
    pub(crate) system: Option<Rc<str>>,
}

impl Client {
    /// A person with their own key: one to three home/work/mobile addresses, one or two client
    /// apps, a favourite model, custom instructions or none.
    pub(crate) fn personal(rng: &mut StdRng) -> Self {
        let ips = (0..rng.random_range(1..=3))
            .map(|_| Rc::from(residential_ip(rng)))
            .collect();
        let uas = (0..rng.random_range(1..=2))
            .map(|_| pick(rng, PERSONAL_UAS))
            .collect();
        let system = match weighted(rng, &[0.45, 0.3, 0.25]) {
            0 => None,
            1 => Some(Rc::from(pick(rng, GENERIC_SYSTEM))),
            _ => Some(Rc::from(pick(rng, PERSONAL_SYSTEM))),
        };
        Client {
            ips,
            rotate: 0.0,
            uas,
            models: favourite_model(rng, &[0.55, 0.3, 0.1, 0.05]),
            system,
        }
    }

    /// A server: a few addresses in one datacenter /24, one client library, one model.
    pub(crate) fn server(
        rng: &mut StdRng,
        net: [u8; 3],
        ua: &'static str,
        model: &'static str,
    ) -> Self {
        Client {
            ips: (0..rng.random_range(1..=2))
                .map(|_| Rc::from(ip_in(rng, net)))
                .collect(),
            rotate: 0.0,
            uas: vec![ua],
            models: vec![(model, 1.0)],
            system: None,
        }
    }

    pub(crate) fn ip(&self, rng: &mut StdRng) -> Rc<str> {
        if self.rotate > 0.0 && rng.random_bool(self.rotate.min(1.0)) {
            return Rc::from(residential_ip(rng));
        }
        self.ips
            .choose(rng)
            .cloned()
            .unwrap_or_else(|| Rc::from(residential_ip(rng)))
    }

    pub(crate) fn ua(&self, rng: &mut StdRng) -> &'static str {
        self.uas.choose(rng).copied().unwrap_or(SDK_UAS[0])
    }

    pub(crate) fn model(&self, rng: &mut StdRng) -> &'static str {
        let w: Vec<f64> = self.models.iter().map(|m| m.1).collect();
        self.models
            .get(weighted(rng, &w))
            .map(|m| m.0)
            .unwrap_or(MODEL_LARGE)
    }
}

/// A favourite model drawn with `weights` over [`MODELS`], used 85% of the time.
pub(crate) fn favourite_model(rng: &mut StdRng, weights: &[f64]) -> Vec<(&'static str, f64)> {
    let fav = weighted(rng, weights);
    MODELS
        .iter()
        .enumerate()
        .map(|(i, m)| (*m, if i == fav { 0.85 } else { 0.05 }))
        .collect()
}
