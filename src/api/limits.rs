//! Limits per identity, so that one agency cannot starve the others: a
//! request rate per credential and per agency (token buckets, `governor`),
//! and a cap on the streaming calls one credential has open at once. A call
//! over a limit is refused with RESOURCE_EXHAUSTED, a message saying when to
//! retry, and that delay in the `retry-after` (seconds) and
//! `grpc-retry-pushback-ms` metadata.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use parking_lot::Mutex;
use tonic::Status;

use crate::api::access::Caller;

#[derive(Clone, Debug)]
pub struct LimitOptions {
    /// Requests per second one credential may make (and its burst).
    pub rate_per_credential: u32,
    /// Requests per second all credentials of one agency may make together.
    pub rate_per_agency: u32,
    /// Streaming calls (Upsert, LinkSeries, Triage) one credential may have
    /// open at once.
    pub streams_per_credential: u32,
}

impl Default for LimitOptions {
    fn default() -> Self {
        LimitOptions {
            rate_per_credential: 2_000,
            rate_per_agency: 4_000,
            streams_per_credential: 8,
        }
    }
}

pub struct Limits {
    opts: LimitOptions,
    credential: DefaultKeyedRateLimiter<String>,
    agency: DefaultKeyedRateLimiter<String>,
    streams: Arc<Mutex<HashMap<String, u32>>>,
}

/// One open streaming call; its slot is given back when dropped.
pub struct StreamPermit {
    streams: Arc<Mutex<HashMap<String, u32>>>,
    key: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut m = self.streams.lock();
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

fn quota(per_second: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN))
}

/// RESOURCE_EXHAUSTED with the retry delay in the message and metadata.
fn exhausted(what: String, wait: Duration) -> Status {
    let ms = wait.as_millis().max(1) as u64;
    let mut s = Status::resource_exhausted(format!("{what}; retry in {ms} ms"));
    let md = s.metadata_mut();
    if let Ok(v) = ms.to_string().parse() {
        md.insert("grpc-retry-pushback-ms", v);
    }
    if let Ok(v) = ms.div_ceil(1000).to_string().parse() {
        md.insert("retry-after", v);
    }
    s
}

impl Limits {
    pub fn new(opts: LimitOptions) -> Limits {
        Limits {
            credential: DefaultKeyedRateLimiter::keyed(quota(opts.rate_per_credential)),
            agency: DefaultKeyedRateLimiter::keyed(quota(opts.rate_per_agency)),
            streams: Arc::new(Mutex::new(HashMap::new())),
            opts,
        }
    }

    /// Admits a call of `caller` or says when to retry; a streaming call
    /// gets a permit to hold until it ends.
    pub fn admit(&self, caller: &Caller, streaming: bool) -> Result<Option<StreamPermit>, Status> {
        if caller.open {
            return Ok(None);
        }
        let clock = DefaultClock::default();
        if let Err(nu) = self.credential.check_key(&caller.credential) {
            return Err(exhausted(
                format!(
                    "credential {} is over its limit of {} requests per second",
                    caller.credential, self.opts.rate_per_credential
                ),
                nu.wait_time_from(clock.now()),
            ));
        }
        if let Err(nu) = self.agency.check_key(&caller.agency) {
            return Err(exhausted(
                format!(
                    "agency {} is over its limit of {} requests per second",
                    caller.agency, self.opts.rate_per_agency
                ),
                nu.wait_time_from(clock.now()),
            ));
        }
        if !streaming {
            return Ok(None);
        }
        let mut m = self.streams.lock();
        let n = m.entry(caller.credential.clone()).or_insert(0);
        if *n >= self.opts.streams_per_credential {
            return Err(exhausted(
                format!(
                    "credential {} already has {} streaming calls open, its limit",
                    caller.credential, self.opts.streams_per_credential
                ),
                Duration::from_secs(1),
            ));
        }
        *n += 1;
        Ok(Some(StreamPermit {
            streams: self.streams.clone(),
            key: caller.credential.clone(),
        }))
    }
}
