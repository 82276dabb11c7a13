//! Criterion micro-benchmarks: the distance kernels (runtime-dispatched
//! AVX2+FMA vs the portable loop) and one search of a sealed segment vs the
//! mutable segment it was written from (same graph, two search routines).
//!
//! `cargo bench --bench kernels`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use vidx::index::distance::{self, Metric};
use vidx::pb;
use vidx::segment::mutable::{MutableSegment, Prepared};
use vidx::segment::sealed::SealedSegment;

fn vectors(n: usize, dim: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| vidx::tools::bench_ann::image_vector(3, i, dim, 50))
        .collect()
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("distance");
    for dim in [128usize, 512, 768] {
        let v = vectors(2, dim);
        let (a, b) = (&v[0], &v[1]);
        g.throughput(Throughput::Elements(dim as u64));
        g.bench_with_input(BenchmarkId::new("dot/dispatch", dim), &dim, |bn, _| {
            bn.iter(|| distance::dot(black_box(a), black_box(b)))
        });
        g.bench_with_input(BenchmarkId::new("dot/portable", dim), &dim, |bn, _| {
            bn.iter(|| distance::dot_portable(black_box(a), black_box(b)))
        });
        g.bench_with_input(BenchmarkId::new("dot/naive", dim), &dim, |bn, _| {
            bn.iter(|| {
                black_box(a)
                    .iter()
                    .zip(black_box(b))
                    .fold(0f32, |s, (x, y)| s + x * y)
            })
        });
        g.bench_with_input(BenchmarkId::new("l2sq/dispatch", dim), &dim, |bn, _| {
            bn.iter(|| distance::l2_squared(black_box(a), black_box(b)))
        });
        g.bench_with_input(BenchmarkId::new("l2sq/portable", dim), &dim, |bn, _| {
            bn.iter(|| distance::l2_squared_portable(black_box(a), black_box(b)))
        });
    }
    g.finish();
}

fn sealed_search(c: &mut Criterion) {
    let (n, dim) = (20_000, 128);
    let data = vectors(n + 100, dim);
    let seg = MutableSegment::new(dim, Metric::Cosine, 16, 200);
    let pts: Vec<Prepared> = data[..n]
        .iter()
        .enumerate()
        .map(|(i, v)| Prepared {
            id: i.to_string(),
            vector: v.clone(),
            metadata: pb::Metadata::default(),
            ..Default::default()
        })
        .collect();
    seg.index(0, &pts);
    seg.commit(0, pts);
    let dir = tempfile::tempdir().unwrap();
    seg.write_sealed(dir.path(), Default::default()).unwrap();
    let sealed = SealedSegment::open(
        1,
        dir.path(),
        dim,
        Metric::Cosine,
        &vidx::segment::sealed::tomb_file_name(0),
    )
    .unwrap();
    let queries = &data[n..];
    let mut g = c.benchmark_group("search-20k-128d-k10");
    for ef in [32usize, 128] {
        g.bench_with_input(BenchmarkId::new("sealed", ef), &ef, |bn, &ef| {
            let mut i = 0;
            bn.iter(|| {
                i = (i + 1) % queries.len();
                sealed
                    .search(black_box(&queries[i]), 10, ef, None, None)
                    .unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("mutable", ef), &ef, |bn, &ef| {
            let mut i = 0;
            bn.iter(|| {
                i = (i + 1) % queries.len();
                seg.search(black_box(&queries[i]), 10, ef, None, None)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, kernels, sealed_search);
criterion_main!(benches);
