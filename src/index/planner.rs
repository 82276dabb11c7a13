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
