//! Helpers every RPC handler file shares: the collections a linking or
//! series request names (with their kinds checked), running blocking
//! work off the async runtime, and the message-limit check of answers.

use std::sync::Arc;

use tonic::Status;

use crate::collection::Collection;
use crate::collection::config;
use crate::collection::registry::Registry;
use crate::error::Error;
use crate::validate;

/// The image and (optional) face collection a linking request names.
pub(crate) fn link_collections(
    registry: &Registry,
    image: &str,
    face: &str,
) -> Result<(Arc<Collection>, Option<Arc<Collection>>), Error> {
    link_names(image, face)?;
    let images = collection_of_kind(registry, "image_collection", image, config::Kind::Image)?;
    let faces = if face.is_empty() {
        None
    } else {
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

/// The one name rule for the collections a linking request names, checked
/// before either name is used for anything (they become file names).
pub(crate) fn link_names(image: &str, face: &str) -> Result<(), Error> {
    validate::collection_name("image_collection", image)?;
    if !face.is_empty() {
        validate::collection_name("face_collection", face)?;
    }
    Ok(())
}

/// The collection `name`, which `field` needs to be of `kind`: linking face
/// points as scenes (or images as faces) would run and store nonsense.
pub(crate) fn collection_of_kind(
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

/// Runs CPU-bound or blocking work on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Status::from),
        Err(e) => Err(Status::internal(format!("worker failed: {e}"))),
    }
}

/// `m` if it fits within `limit` bytes; else RESOURCE_EXHAUSTED saying
/// how to ask for less.
pub(crate) fn fit<T: prost::Message>(
    limit: usize,
    what: &str,
    ask_less: &str,
    m: T,
) -> Result<T, Status> {
    let n = m.encoded_len();
    if n > limit {
        return Err(Status::resource_exhausted(format!(
            "the {what} is {n} bytes, over the server's message limit of {limit} bytes \
             (--max-message-bytes); {ask_less}"
        )));
    }
    Ok(m)
}
