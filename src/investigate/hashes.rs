//! The hashes a triage item carries (file digests and a PDQ hash with its
//! quality), checked; the `known` stage matches them before the
//! embeddings are searched.

use crate::error::Result;
use crate::pb;
use crate::validate;

/// The hashes of one item, checked.
#[derive(Clone, Debug, Default)]
pub struct ItemHashes {
    pub md5: Vec<u8>,
    pub sha1: Vec<u8>,
    pub sha256: Vec<u8>,
    pub pdq: Vec<u8>,
    pub pdq_quality: u32,
}

impl ItemHashes {
    /// The hashes of request item `it`; `field` names it in errors.
    pub fn from_pb(field: &str, it: &pb::TriageItem) -> Result<ItemHashes> {
        for (name, d, len) in [
            ("md5", &it.md5, 16),
            ("sha1", &it.sha1, 20),
            ("sha256", &it.sha256, 32),
        ] {
            if !d.is_empty() {
                validate::digest(&format!("{field}.{name}"), d, Some(len))?;
            }
        }
        if !it.pdq.is_empty() {
            validate::bits(&format!("{field}.pdq"), &it.pdq, 256)?;
        }
        validate::quality(&format!("{field}.pdq_quality"), it.pdq_quality)?;
        Ok(ItemHashes {
            md5: it.md5.clone(),
            sha1: it.sha1.clone(),
            sha256: it.sha256.clone(),
            pdq: it.pdq.clone(),
            pdq_quality: it.pdq_quality,
        })
    }

    pub fn any(&self) -> bool {
        !(self.md5.is_empty()
            && self.sha1.is_empty()
            && self.sha256.is_empty()
            && self.pdq.is_empty())
    }
}
