//! Request and point builders the tests share.

use vidx::pb;

use super::Client;

pub fn create_req(name: &str, dim: u32, metric: pb::Metric) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        name: name.into(),
        dim,
        metric: metric as i32,
        kind: pb::Kind::Image as i32,
        hnsw: None,
        quantization: pb::Quantization::Unspecified as i32,
        vector_storage: pb::VectorStorage::F32 as i32,
    }
}

/// A create request for a collection whose sealed segments hold `q` codes.
pub fn create_quantized(
    name: &str,
    dim: u32,
    metric: pb::Metric,
    q: pb::Quantization,
) -> pb::CreateCollectionRequest {
    pb::CreateCollectionRequest {
        quantization: q as i32,
        ..create_req(name, dim, metric)
    }
}

pub fn meta(country: &str, upload: &str) -> pb::Metadata {
    pb::Metadata {
        media_id: String::new(),
        upload_id: upload.into(),
        case_id: "case-1".into(),
        country: country.into(),
        agency: format!("{country}-police"),
        captured_at: 1_500_000_000,
        uploaded_at: 1_600_000_000,
        series_label: String::new(),
        victim_identified: false,
        tags: vec!["indoor".into()],
    }
}

pub fn point(id: &str, vector: Vec<f32>) -> pb::Point {
    pb::Point {
        id: id.into(),
        vector,
        metadata: Some(meta("DE", "up-1")),
        ..Default::default()
    }
}

/// Streams points in batches of `batch` as one client-streaming Upsert.
pub async fn upsert_batches(
    client: &mut Client,
    collection: &str,
    points: Vec<pb::Point>,
    batch: usize,
) -> Result<u64, tonic::Status> {
    let reqs: Vec<pb::UpsertRequest> = points
        .chunks(batch)
        .map(|c| pb::UpsertRequest {
            collection: collection.into(),
            points: c.to_vec(),
        })
        .collect();
    client
        .upsert(tokio_stream::iter(reqs))
        .await
        .map(|r| r.into_inner().upserted)
}

pub fn vector_query(v: Vec<f32>) -> pb::Query {
    pb::Query {
        query: Some(pb::query::Query::Vector(pb::Vector { values: v })),
    }
}

pub fn id_query(id: &str) -> pb::Query {
    pb::Query {
        query: Some(pb::query::Query::PointId(id.into())),
    }
}

pub fn search_req(collection: &str, queries: Vec<pb::Query>, k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: collection.into(),
        queries,
        k,
        ef: 0,
        ..Default::default()
    }
}
