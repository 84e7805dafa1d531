//! Honest address churn: people who reach the API from more than one network, so that an
//! account's address changing is not by itself the mark of a rotating proxy.
//!
//! `--address-churn P` gives that share of the people ([`is_person`]: personal accounts, heavy
//! users, a task endpoint's students) one of two habits, per conversation (a request without a
//! conversation is its own):
//! - mobile (two in three): half their conversations start from a phone on one carrier, a
//!   fresh address in the carrier's /16 each time (carrier-grade NAT hands out a new one per
//!   session), the other half from their own addresses as drawn;
//! - VPN (one in three): every conversation leaves through one of the exits they use (one to
//!   three of [`VPN_EXITS`] addresses, drawn for the week and shared by every VPN user of it),
//!   so honest accounts share exact addresses too.
//!
//! The pass runs after every account is made, with an RNG seeded by the week's seed and the
//! account id, so prompts, times and every field but `ip` are byte-identical with and without
//! churn, and a person's churn does not depend on the other accounts.

use std::collections::HashMap;
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::benign::Human;
use super::client::{ip_in, residential_ip, subnet, FIRST_OCTETS};
use super::{endpoint, Account, Strategy};

/// Whether accounts of `kind` are one person with their own devices (`Client::personal`).
pub(crate) fn is_person(kind: &str) -> bool {
    kind == endpoint::STUDENT
        || [Human::casual(), Human::heavy()]
            .iter()
            .any(|h| h.kind() == kind)
}
/// How many VPN exit addresses the week has.
pub(crate) const VPN_EXITS: usize = 16;

/// FNV-1a of the account id: a seed that does not depend on the order accounts were made in.
fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Give `share` of the people in `accounts` mobile or VPN addresses (see the module doc).
pub(crate) fn apply(accounts: &mut [Account], seed: u64, share: f64) {
    if share <= 0.0 {
        return;
    }
    let mut week = StdRng::seed_from_u64(seed ^ 0x5650_4e5f_6578_6974);
    let exits: Vec<Rc<str>> = (0..VPN_EXITS)
        .map(|_| {
            let net = subnet(&mut week);
            Rc::from(ip_in(&mut week, net))
        })
        .collect();
    for a in accounts.iter_mut().filter(|a| is_person(a.kind)) {
        let mut rng = StdRng::seed_from_u64(seed ^ id_hash(&a.id));
        if !rng.random_bool(share.min(1.0)) {
            continue;
        }
        let mobile = rng.random_bool(2.0 / 3.0);
        let carrier = [
            *FIRST_OCTETS.choose(&mut rng).unwrap_or(&98),
            rng.random_range(0..=255u8),
        ];
        let mine: Vec<Rc<str>> = (0..rng.random_range(1..=3))
            .filter_map(|_| exits.choose(&mut rng).cloned())
            .collect();
        let mut by_conv: HashMap<Rc<str>, Rc<str>> = HashMap::new();
        for r in &mut a.requests {
            let Some(home) = r.ip.clone() else { continue };
            let draw = |rng: &mut StdRng| -> Rc<str> {
                if mobile {
                    if rng.random_bool(0.5) {
                        Rc::from(format!(
                            "{}.{}.{}.{}",
                            carrier[0],
                            carrier[1],
                            rng.random_range(0..=255u8),
                            rng.random_range(1..=254u8)
                        ))
                    } else {
                        home.clone()
                    }
                } else {
                    mine.choose(rng)
                        .cloned()
                        .unwrap_or_else(|| Rc::from(residential_ip(rng)))
                }
            };
            r.ip = Some(match &r.conversation_id {
                Some(c) => by_conv
                    .entry(c.clone())
                    .or_insert_with(|| draw(&mut rng))
                    .clone(),
                None => draw(&mut rng),
            });
        }
    }
}
