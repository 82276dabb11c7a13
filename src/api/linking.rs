//! `LinkSeries` as a job: resolves its thresholds (calibrated when left at
//! 0 and the collection holds labelled material), links under the
//! investigators' decisions, streams every series and "same person" lead,
//! and stores the state for a whole-collection run over unrestricted
//! material.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tonic::Status;

use crate::api::guard::NoteSlot;
use crate::api::shared::fit;
use crate::collection::Collection;
use crate::error::Error;
use crate::index::filter::Filter;
use crate::investigate::calibrate;
use crate::investigate::decisions::DecisionStore;
use crate::investigate::link;
use crate::investigate::series::{LinkSettings, SeriesState, StateStore, state_format};
use crate::metrics::{RunCounts, RunReport};
use crate::pb;

/// A checked `LinkSeries` request with what the run reads and where it
/// stores: `visibility` hides what the run may not read (restricted
/// material, unless the caller included what it may see of it), `scope`
/// is the upload/case filter.
pub struct LinkJob {
    pub images: Arc<Collection>,
    pub faces: Option<Arc<Collection>>,
    pub image_name: String,
    pub face_name: String,
    pub params: pb::LinkParams,
    pub visibility: Option<Filter>,
    pub scope: Option<Filter>,
    pub with_restricted: bool,
    pub store: StateStore,
    pub decisions: DecisionStore,
    pub lock: Arc<parking_lot::Mutex<()>>,
    pub note: NoteSlot,
    /// The server's message limit: an event over it ends the stream with
    /// RESOURCE_EXHAUSTED.
    pub limit: usize,
}

type LinkTx = mpsc::Sender<Result<pb::LinkEvent, Status>>;

impl LinkJob {
    fn send(&self, tx: &LinkTx, e: pb::link_event::Event) {
        let event = pb::LinkEvent { event: Some(e) };
        let ask_less = "link a smaller scope, or raise the server's --max-message-bytes";
        // A client that went away just stops listening.
        let _ = tx.blocking_send(fit(self.limit, "LinkSeries event", ask_less, event));
    }

    /// Runs the job on the calling (blocking) thread; ends the stream with
    /// the summary or the error.
    pub fn run(self, tx: LinkTx) {
        let started = Instant::now();
        let result = self.link(&tx);
        record_link_series(&self.image_name, started, result.as_ref().ok());
        match result {
            Ok(summary) => {
                self.note.0.lock().results = summary.series;
                tracing::info!(collection = %self.image_name, series = summary.series, media = summary.media, "linked");
                self.send(&tx, pb::link_event::Event::Summary(summary));
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(Status::from(e)));
            }
        }
    }

    fn link(&self, tx: &LinkTx) -> Result<pb::LinkSummary, Error> {
        let progress = |stage: &'static str, done: u64, total: u64| {
            self.send(
                tx,
                pb::link_event::Event::Progress(pb::LinkProgress {
                    stage: stage.into(),
                    done,
                    total,
                }),
            );
        };
        let _guard = self.lock.lock();
        let iv = self.images.view_as(self.visibility.clone())?;
        let fv = self
            .faces
            .as_ref()
            .map(|f| f.view_as(self.visibility.clone()))
            .transpose()?;
        let t = Instant::now();
        progress("calibrate", 0, 1);
        let (settings, source, _) =
            calibrate::resolve(Some(&self.params), &iv, fv.as_ref(), self.scope.as_ref())?;
        progress("calibrate", 1, 1);
        let calibrate_seconds = t.elapsed().as_secs_f64();
        let book = self.decisions.load(&self.image_name)?;
        let mut linked = link::link_full(
            (&iv, &self.image_name),
            fv.as_ref().map(|v| (v, self.face_name.as_str())),
            &settings,
            self.scope.as_ref(),
            book.constraints(),
            &progress,
        )?;
        book.apply_review(&mut linked.series);
        let t = Instant::now();
        let total = linked.series.len() as u64;
        for (i, rec) in linked.series.iter().enumerate() {
            self.send(tx, pb::link_event::Event::Series(rec.to_pb()));
            if (i as u64 + 1).is_multiple_of((total / 100).max(1)) {
                progress("output", i as u64 + 1, total);
            }
        }
        for p in &linked.persons {
            self.send(tx, pb::link_event::Event::SamePerson(p.to_pb()));
        }
        let stored = self.scope.is_none() && !self.with_restricted;
        let mut summary = summary_of(&linked, &settings, &source, stored);
        summary.decisions = book.decisions().len() as u64;
        let mut stages = vec![("calibrate", calibrate_seconds)];
        stages.extend(linked.stages.iter().copied());
        if stored {
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

/// The summary of a link run (stage times and decisions are added by the
/// caller).
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
        refused_by_decisions: st.refused_by_decisions as u64,
        decisions: 0,
        face_joined_series: st.face_joined_series as u64,
        face_joins: st.face_joins as u64,
        corroborated_edges: st.corroborated_edges as u64,
        identities: st.identities as u64,
        recurring_identities: st.recurring_identities as u64,
        same_person: linked.persons.len() as u64,
        threshold_source: source.to_string(),
    }
}

/// Records a LinkSeries run.
fn record_link_series(collection: &str, started: Instant, summary: Option<&pb::LinkSummary>) {
    crate::metrics::link_run(RunReport {
        run: "link_series",
        collection,
        elapsed: started.elapsed(),
        result: summary.map(|s| RunCounts {
            media: s.media,
            series: s.series,
        }),
    });
}
