//! The query planner's rules, shared by the mutable and the sealed segment:
//! when a filtered search is answered by an exact scan instead of a graph
//! walk, and how a candidate list is cut to the best `k`.

/// Largest estimated number of passing points that the planner answers with
/// an exact scan rather than a graph search. A filtered graph search has to
/// gather `ef` passing nodes, so at pass rate `s` it expands about `ef / s`
/// nodes of ~32 links each; an exact scan computes `s * n` distances. They
/// cost the same at `s * n = sqrt(32 * ef * n)`: below that, scan (measured
/// by `vidx bench filter`: at 10% of 100k points the graph search ran at
/// 0.06x unfiltered QPS, the scan is far faster).
pub fn exact_scan_limit(segment_len: usize, ef: usize) -> usize {
    ((32.0 * ef.max(1) as f64 * segment_len as f64).sqrt() as usize).max(2048)
}

/// Keeps the `k` lowest-ranked entries, sorted ascending.
pub fn top_k<T>(hits: &mut Vec<(T, f32)>, k: usize) {
    let k = k.min(hits.len());
    if k == 0 {
        hits.clear();
        return;
    }
    hits.select_nth_unstable_by(k - 1, |a, b| a.1.total_cmp(&b.1));
    hits.truncate(k);
    hits.sort_by(|a, b| a.1.total_cmp(&b.1));
}

/// How a segment of binary codes answers a Hamming radius search; every
/// plan is exact, they differ only in what they read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HammingPlan {
    /// Compare the query with every code (sequential reads, popcount).
    Scan,
    /// Compare it with the codes a selective filter lets through.
    ScanPassing,
    /// Probe the multi-index buckets near the query's substrings and
    /// compare it with the codes found there.
    MultiIndex,
}

/// Relative costs, measured with `vidx bench pdq` on 1M random 256-bit
/// codes: a code read in sequence costs 1, one read at a random place
/// (a multi-index candidate, or a filter's passing offset) costs ~4, a
/// bucket probe ~8 (two random reads of its bounds plus the loop).
const SEQUENTIAL: f64 = 1.0;
const RANDOM: f64 = 4.0;
const PROBE: f64 = 8.0;

/// The cheapest exact plan for a radius search over `n` codes whose
/// multi-index (if any) has `tables` tables of 16-bit substrings, probing
/// `probes` buckets at this radius; `passing` is a filter's estimate of
/// the codes it lets through (None without a filter).
pub fn hamming_plan(n: usize, has_index: bool, probes: u64, passing: Option<usize>) -> HammingPlan {
    let scan = n as f64 * SEQUENTIAL;
    let passing_cost = passing.map_or(f64::INFINITY, |p| p as f64 * RANDOM);
    let mih = if has_index {
        let candidates = probes as f64 * n as f64 / 65536.0;
        probes as f64 * PROBE + candidates * RANDOM
    } else {
        f64::INFINITY
    };
    if mih <= scan && mih <= passing_cost {
        HammingPlan::MultiIndex
    } else if passing_cost < scan {
        HammingPlan::ScanPassing
    } else {
        HammingPlan::Scan
    }
}
