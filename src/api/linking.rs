//! The linking RPCs' work: `LinkSeries` as a job that resolves its
//! thresholds, links and streams the series; `Triage` as a job that judges
//! items message by message; the collections a linking request names.

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::api::work::blocking;
use crate::collection::Collection;
use crate::collection::config;
use crate::collection::registry::Registry;
use crate::error::Error;
use crate::index::distance::Metric;
use crate::index::filter::Filter;
use crate::investigate::calibrate;
use crate::investigate::link;
use crate::investigate::series::{LinkSettings, SeriesState, StateStore, state_format};
use crate::investigate::triage::{Item, Triager};
use crate::pb;
use crate::validate;

/// The image and (optional) face collection a linking request names.
pub fn link_collections(
    registry: &Registry,
    image: &str,
    face: &str,
) -> Result<(Arc<Collection>, Option<Arc<Collection>>), Error> {
    validate::collection_name("image_collection", image)?;
    let images = collection_of_kind(registry, "image_collection", image, config::Kind::Image)?;
    let faces = if face.is_empty() {
        None
    } else {
        validate::collection_name("face_collection", face)?;
        if face == image {
            return Err(Error::invalid(format!(
                "face_collection {face:?} is the image collection; name the collection holding the face points"
            )));
        }
        Some(collection_of_kind(
            registry,
            "face_collection",
            face,
            config::Kind::Face,
        )?)
    };
    Ok((images, faces))
}

/// The collection `name`, which `field` needs to be of `kind`: linking face
/// points as scenes (or images as faces) would run and store nonsense.
pub fn collection_of_kind(
    registry: &Registry,
    field: &str,
    name: &str,
    kind: config::Kind,
) -> Result<Arc<Collection>, Error> {
    let c = registry.get(name)?;
    let has = c.config().kind;
    if has != kind {
        return Err(Error::FailedPrecondition(format!(
            "{field} {name:?} is a {} collection; {field} must name a {} collection",
            has.to_pb().as_str_name(),
            kind.to_pb().as_str_name()
        )));
    }
    Ok(c)
}

/// A running `LinkSeries` call: thresholds resolved (calibrated when left
/// at 0 and the collection holds labelled material), the link, every series
/// and person streamed, the state stored for a whole-collection run.
pub struct LinkJob {
    images: Arc<Collection>,
    faces: Option<Arc<Collection>>,
    image_name: String,
    face_name: String,
    params: pb::LinkParams,
    scope: Option<Filter>,
    store: StateStore,
    lock: Arc<parking_lot::Mutex<()>>,
}

type LinkTx = mpsc::Sender<Result<pb::LinkEvent, Status>>;

impl LinkJob {
    /// Checks the request (bad parameters get their status before any work).
    pub fn new(
        registry: &Registry,
        req: pb::LinkSeriesRequest,
        store: &StateStore,
        lock: &Arc<parking_lot::Mutex<()>>,
    ) -> Result<LinkJob, Status> {
        let (images, faces) =
            link_collections(registry, &req.image_collection, &req.face_collection)?;
        let params = req.params.unwrap_or_default();
        link::check_params(&params)?;
        let scope = req.scope.unwrap_or_default();
        let filter = Filter {
            upload_ids_any: crate::index::filter::list("scope.upload_ids", &scope.upload_ids)?,
            case_ids_any: crate::index::filter::list("scope.case_ids", &scope.case_ids)?,
            ..Default::default()
        };
        Ok(LinkJob {
            images,
            faces,
            image_name: req.image_collection,
            face_name: req.face_collection,
            params,
            scope: (!filter.is_empty()).then_some(filter),
            store: store.clone(),
            lock: lock.clone(),
        })
    }

    fn send(tx: &LinkTx, e: pb::link_event::Event) {
        // A client that went away just stops listening.
        let _ = tx.blocking_send(Ok(pb::LinkEvent { event: Some(e) }));
    }

    /// Runs the job on the calling (blocking) thread; ends the stream with
    /// the summary or the error.
    pub fn run(self, tx: LinkTx) {
        match self.link(&tx) {
            Ok(summary) => {
                tracing::info!(collection = %self.image_name, series = summary.series, media = summary.media, "linked");
                Self::send(&tx, pb::link_event::Event::Summary(summary));
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(Status::from(e)));
            }
        }
    }

    fn link(&self, tx: &LinkTx) -> Result<pb::LinkSummary, Error> {
        let progress = |stage: &'static str, done: u64, total: u64| {
            Self::send(
                tx,
                pb::link_event::Event::Progress(pb::LinkProgress {
                    stage: stage.into(),
                    done,
                    total,
                }),
            );
        };
        let _guard = self.lock.lock();
        let iv = self.images.view()?;
        let fv = self.faces.as_ref().map(|f| f.view()).transpose()?;
        let t = Instant::now();
        progress("calibrate", 0, 1);
        let (settings, source, _) =
            calibrate::resolve(Some(&self.params), &iv, fv.as_ref(), self.scope.as_ref())?;
        progress("calibrate", 1, 1);
        let calibrate_seconds = t.elapsed().as_secs_f64();
        let linked = link::link_full(
            (&iv, &self.image_name),
            fv.as_ref().map(|v| (v, self.face_name.as_str())),
            &settings,
            self.scope.as_ref(),
            &progress,
        )?;
        let t = Instant::now();
        let total = linked.series.len() as u64;
        for (i, rec) in linked.series.iter().enumerate() {
            Self::send(tx, pb::link_event::Event::Series(rec.to_pb()));
            if (i as u64 + 1).is_multiple_of((total / 100).max(1)) {
                progress("output", i as u64 + 1, total);
            }
        }
        for p in &linked.persons {
            Self::send(tx, pb::link_event::Event::SamePerson(p.to_pb()));
        }
        let mut summary = summary_of(&linked, &settings, &source, self.scope.is_none());
        let mut stages = vec![("calibrate", calibrate_seconds)];
        stages.extend(linked.stages.iter().copied());
        if summary.stored {
            self.store.save(&SeriesState {
                format: state_format(),
                image_collection: self.image_name.clone(),
                face_collection: self.face_name.clone(),
                settings,
                series: linked.series,
                linked_uploads: Vec::new(),
                persons: linked.persons,
                threshold_source: source,
            })?;
        }
        stages.push(("output", t.elapsed().as_secs_f64()));
        summary.stages = stages
            .into_iter()
            .map(|(stage, seconds)| pb::StageTime {
                stage: stage.into(),
                seconds,
            })
            .collect();
        Ok(summary)
    }
}

/// The summary of a link run (stage times are added by the caller).
fn summary_of(
    linked: &link::Linked,
    settings: &LinkSettings,
    source: &str,
    stored: bool,
) -> pb::LinkSummary {
    let st = &linked.stats;
    pb::LinkSummary {
        media: linked.media.len() as u64,
        series: linked.series.len() as u64,
        linked_media: linked.series.iter().map(|s| s.media_ids.len() as u64).sum(),
        cross_border_series: linked.series.iter().filter(|s| s.cross_border()).count() as u64,
        image_edges: linked.image_edges as u64,
        face_edges: linked.face_edges as u64,
        refused_edges: st.refused_edges as u64,
        stages: Vec::new(),
        stored,
        params: Some(link::settings_to_pb(settings)),
        face_joined_series: st.face_joined_series as u64,
        face_joins: st.face_joins as u64,
        corroborated_edges: st.corroborated_edges as u64,
        identities: st.identities as u64,
        recurring_identities: st.recurring_identities as u64,
        same_person: linked.persons.len() as u64,
        threshold_source: source.to_string(),
    }
}

/// Stores triaged items: an image point per item (id = item id, media_id =
/// item id unless set) and a face point `<id>#<n>` per face. Returns items stored.
fn store_triaged(
    images: &Collection,
    faces: Option<&Collection>,
    items: Vec<Item>,
) -> Result<u64, Error> {
    let n = items.len() as u64;
    let mut img = Vec::with_capacity(items.len());
    let mut fc = Vec::new();
    for it in items {
        let mut meta = it.metadata;
        if meta.media_id.is_empty() {
            meta.media_id = it.id.clone();
        }
        for (i, f) in it.faces.into_iter().enumerate() {
            fc.push(pb::Point {
                id: format!("{}#{i}", it.id),
                vector: f,
                metadata: Some(meta.clone()),
            });
        }
        img.push(pb::Point {
            id: it.id,
            vector: it.vector,
            metadata: Some(meta),
        });
    }
    for chunk in img.chunks(1000) {
        images.upsert(chunk.to_vec())?;
    }
    if let Some(f) = faces {
        for chunk in fc.chunks(1000) {
            f.upsert(chunk.to_vec())?;
        }
    }
    Ok(n)
}

/// The linking settings of a triage: the stored series' (else the
/// defaults), with the thresholds the first message sets instead.
pub fn triage_settings(
    first: &pb::TriageRequest,
    state: Option<&SeriesState>,
    metric: Metric,
) -> Result<LinkSettings, Status> {
    let mut params = state
        .map(|s| link::settings_to_pb(&s.settings))
        .unwrap_or_default();
    for (field, v, slot) in [
        (
            "image_threshold",
            first.image_threshold,
            &mut params.image_threshold,
        ),
        (
            "face_threshold",
            first.face_threshold,
            &mut params.face_threshold,
        ),
    ] {
        if v != 0.0 {
            if !v.is_finite() || v < 0.0 {
                return Err(Status::invalid_argument(format!(
                    "{field} is {v}; it must be a finite distance >= 0"
                )));
            }
            *slot = v;
        }
    }
    Ok(link::settings_from_pb(Some(&params), metric)?)
}

/// A running `Triage` call: judges the items message by message as they
/// arrive and streams the verdicts back; at the end groups the new items
/// into candidate series (and stores every item if asked).
pub struct TriageJob {
    pub triager: Arc<Triager>,
    pub images: Arc<Collection>,
    pub faces: Option<Arc<Collection>>,
    pub store: bool,
    pub tx: mpsc::Sender<Result<pb::TriageResponse, Status>>,
}

/// The counts of a triage so far, and the items its end needs.
#[derive(Default)]
struct Tally {
    summary: pb::TriageSummary,
    /// Items judged NEW, for grouping.
    new_items: Vec<Item>,
    /// Every item, when they are to be stored.
    kept: Vec<Item>,
}

impl Tally {
    fn add(&mut self, items: Vec<Item>, results: &[pb::TriageResult], keep: bool) {
        for (it, r) in items.into_iter().zip(results) {
            self.summary.items += 1;
            if r.verdict == pb::Verdict::Known as i32 {
                self.summary.known += 1;
                if keep {
                    self.kept.push(it);
                }
            } else {
                self.summary.new += 1;
                self.summary.new_with_faces += !it.faces.is_empty() as u64;
                if keep {
                    self.kept.push(it.clone());
                }
                self.new_items.push(it);
            }
        }
    }
}

impl TriageJob {
    pub async fn run(self, first: pb::TriageRequest, mut input: Streaming<pb::TriageRequest>) {
        let mut tally = Tally::default();
        let mut next = Some(first);
        let mut item_no = 0usize;
        loop {
            let msg = match next.take() {
                Some(m) => m,
                None => match input.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = self.tx.send(Err(e)).await;
                        return;
                    }
                },
            };
            let base = item_no;
            item_no += msg.items.len();
            let (items, results) = match self.judge(msg, base).await {
                Ok(x) => x,
                Err(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return;
                }
            };
            tally.add(items, &results, self.store);
            let response = pb::TriageResponse {
                results,
                summary: None,
            };
            if self.tx.send(Ok(response)).await.is_err() {
                return;
            }
        }
        let mut summary = tally.summary;
        let end = self
            .finish(tally.new_items, tally.kept)
            .await
            .map(|(groups, stored)| {
                summary.new_groups = groups
                    .unwrap_or_default()
                    .into_iter()
                    .map(|ids| pb::TriageGroup { ids })
                    .collect();
                summary.stored = stored;
                pb::TriageResponse {
                    results: Vec::new(),
                    summary: Some(summary),
                }
            });
        let _ = self.tx.send(end).await;
    }

    /// Checks and judges one message's items (numbered from `base` in
    /// error messages), on blocking threads.
    async fn judge(
        &self,
        msg: pb::TriageRequest,
        base: usize,
    ) -> Result<(Vec<Item>, Vec<pb::TriageResult>), Status> {
        let t = self.triager.clone();
        blocking(move || {
            let items = msg
                .items
                .iter()
                .enumerate()
                .map(|(i, it)| t.prepare(&format!("items[{}]", base + i), it))
                .collect::<Result<Vec<_>, Error>>()?;
            let results = items
                .par_iter()
                .map(|it| t.judge(it))
                .collect::<Result<Vec<_>, Error>>()?;
            Ok((items, results))
        })
        .await
    }

    /// Candidate series among the new items, and the items stored (if asked).
    async fn finish(
        &self,
        new_items: Vec<Item>,
        kept: Vec<Item>,
    ) -> Result<(Option<Vec<Vec<String>>>, u64), Status> {
        let t = self.triager.clone();
        let (images, faces) = (self.images.clone(), self.faces.clone());
        let store = self.store;
        blocking(move || {
            let groups = t.group_new(&new_items);
            let stored = if store {
                store_triaged(&images, faces.as_deref(), kept)?
            } else {
                0
            };
            Ok((groups, stored))
        })
        .await
    }
}
