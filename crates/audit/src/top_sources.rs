//! `top_sources`: calls by interface, source, API key, user, client IP, user
//! agent, operation and path prefix, each with its share of the total.

use crate::paths::path_prefix;
use crate::Map;
use callmeter_model::{CallEvent, Interface, Operation};
use serde::{Deserialize, Serialize};

/// One value and its calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// The interface, key, user, address, agent, operation, path prefix or source.
    pub value: String,
    /// Calls with that value.
    pub calls: u64,
    /// `calls` over all calls audited, 0–1.
    pub share: f64,
}

/// The biggest values of each dimension, most calls first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TopSources {
    /// By source (API key, else user, else client and agent), in plain words.
    pub source: Vec<Share>,
    /// By interface.
    pub interface: Vec<Share>,
    /// By API key.
    pub api_key: Vec<Share>,
    /// By user.
    pub user: Vec<Share>,
    /// By client address.
    pub client_ip: Vec<Share>,
    /// By user agent.
    pub user_agent: Vec<Share>,
    /// By operation.
    pub operation: Vec<Share>,
    /// By the first segments of the path.
    pub path_prefix: Vec<Share>,
}

/// Counts per value; memory grows with distinct values, not calls.
#[derive(Debug, Default)]
pub(crate) struct TopSourceCounts {
    interface: [u64; Interface::ALL.len()],
    operation: [u64; Operation::ALL.len()],
    api_key: Map<Box<str>, u64>,
    user: Map<Box<str>, u64>,
    client_ip: Map<Box<str>, u64>,
    user_agent: Map<Box<str>, u64>,
    path_prefix: Map<Box<str>, u64>,
    source: Map<u32, u64>,
}

fn bump(map: &mut Map<Box<str>, u64>, v: Option<&str>) {
    let Some(v) = v.filter(|v| !v.is_empty()) else { return };
    match map.get_mut(v) {
        Some(n) => *n += 1,
        None => {
            map.insert(v.into(), 1);
        }
    }
}

impl TopSourceCounts {
    /// Counts one call of source `source` whose normalized path is `path`.
    pub fn add(&mut self, e: &CallEvent, source: u32, path: Option<&str>, prefix_depth: usize) {
        self.interface[e.interface.code() as usize] += 1;
        self.operation[e.operation.code() as usize] += 1;
        bump(&mut self.api_key, e.api_key.as_deref());
        bump(&mut self.user, e.user.as_deref());
        bump(&mut self.client_ip, e.client_ip.as_deref());
        bump(&mut self.user_agent, e.user_agent.as_deref());
        bump(&mut self.path_prefix, path.map(|p| path_prefix(p, prefix_depth)));
        *self.source.entry(source).or_default() += 1;
    }

    /// The top `n` of each dimension; `source_name` names a source id.
    pub fn top(&self, n: usize, total: u64, source_name: impl Fn(u32) -> String) -> TopSources {
        let share = |calls: u64| if total == 0 { 0.0 } else { calls as f64 / total as f64 };
        let rank = |mut v: Vec<(String, u64)>| -> Vec<Share> {
            v.retain(|(_, c)| *c > 0);
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(n);
            v.into_iter().map(|(value, calls)| Share { value, calls, share: share(calls) }).collect()
        };
        let strings = |m: &Map<Box<str>, u64>| m.iter().map(|(k, v)| (k.to_string(), *v)).collect::<Vec<_>>();
        TopSources {
            source: rank(self.source.iter().map(|(k, v)| (source_name(*k), *v)).collect()),
            interface: rank(
                Interface::ALL.iter().map(|i| (i.to_string(), self.interface[i.code() as usize])).collect(),
            ),
            api_key: rank(strings(&self.api_key)),
            user: rank(strings(&self.user)),
            client_ip: rank(strings(&self.client_ip)),
            user_agent: rank(strings(&self.user_agent)),
            operation: rank(
                Operation::ALL.iter().map(|o| (o.to_string(), self.operation[o.code() as usize])).collect(),
            ),
            path_prefix: rank(strings(&self.path_prefix)),
        }
    }
}
