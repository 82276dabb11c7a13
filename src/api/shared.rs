//! Helpers every RPC handler file shares: the collections a linking or
//! series request names (with their kinds checked), and running blocking
//! work off the async runtime.

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
