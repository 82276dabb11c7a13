//! Which shard a point belongs to: a stable hash of its routing key (the id
//! up to the first `#`, vidx's convention for a media's faces being
//! `<media_id>#<n>`), so an image and its faces share a shard and a request
//! that carries only ids can be sent to the owning shard.

/// The part of `id` that decides its shard: the media part of a face id.
pub fn routing_key(id: &str) -> &str {
    id.split('#').next().unwrap_or(id)
}

/// The shard of point `id` among `shards` (≥ 1). CRC-32C rather than std's
/// hasher: the value must never change between builds or machines, or
/// points would move shards.
pub fn shard_of(id: &str, shards: u32) -> u32 {
    crc32c::crc32c(routing_key(id).as_bytes()) % shards.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_follow_their_media_and_the_hash_is_stable() {
        assert_eq!(routing_key("abc#3"), "abc");
        assert_eq!(routing_key("abc"), "abc");
        for s in [2, 3, 7] {
            assert_eq!(shard_of("media-1#0", s), shard_of("media-1", s));
            assert_eq!(shard_of("media-1#5", s), shard_of("media-1", s));
        }
        let spread: Vec<u32> = (0..1000).map(|i| shard_of(&format!("m{i}"), 2)).collect();
        let ones = spread.iter().filter(|&&s| s == 1).count();
        assert!((400..600).contains(&ones), "{ones} of 1000 in shard 1");
    }
}
