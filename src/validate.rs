//! Input validation: every limit a request must respect, and the messages a
//! person sees when it does not. Messages name the field and the bad value.

use crate::error::{Error, Result};
use crate::pb;

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_ID_BYTES: usize = 256;
pub const MAX_DIM: u32 = 4096;
pub const MAX_K: u32 = 1000;
pub const MAX_EF: u32 = 10_000;
pub const MAX_QUERIES: usize = 10_000;
pub const MAX_IDS: usize = 100_000;
pub const MAX_META_STRING: usize = 256;
pub const MAX_TAGS: usize = 64;
pub const MAX_M: u32 = 128;
pub const MAX_EF_CONSTRUCTION: u32 = 4096;
/// Bound on a vector's squared norm: keeps every dot product and squared
/// distance between two stored vectors finite in f32 (|a·b| ≤ |a||b|).
pub const MAX_NORM_SQUARED: f32 = 1e30;

/// Shortens a value for an error message.
pub fn show(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        format!("{s:?}")
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}… ({} bytes)", &s[..end], s.len())
    }
}

/// Collection names: `[a-z0-9_-]{1,64}`; they become directory names.
pub fn collection_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "{field} is empty; a collection name is [a-z0-9_-]{{1,64}}"
        )));
    }
    let ok = name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err(Error::invalid(format!(
            "{field} {} is not a valid collection name: use 1 to 64 of a-z, 0-9, '_' and '-'",
            show(name)
        )));
    }
    Ok(())
}

/// Point ids: 1 to 256 bytes of UTF-8 without control characters.
pub fn point_id(field: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(format!(
            "{field} is empty; every point needs an id"
        )));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::invalid(format!(
            "{field} {} is {} bytes; ids are at most {MAX_ID_BYTES} bytes",
            show(id),
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} {} contains a control character",
            show(id)
        )));
    }
    Ok(())
}

/// Checks a vector against the collection's dimension and metric.
pub fn vector(field: &str, v: &[f32], dim: u32, metric: pb::Metric) -> Result<()> {
    if v.len() != dim as usize {
        return Err(Error::invalid(format!(
            "{field} has {} values; the collection's dimension is {dim}",
            v.len()
        )));
    }
    if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(Error::invalid(format!(
            "{field}[{i}] is {x}; values must be finite"
        )));
    }
    // Summed in f64 so an overflowing norm is reported rather than becoming inf.
    let norm2: f64 = v.iter().map(|x| (*x as f64) * (*x as f64)).sum();
    if norm2 > MAX_NORM_SQUARED as f64 {
        return Err(Error::invalid(format!(
            "{field} has squared norm {norm2:e}; at most {MAX_NORM_SQUARED:e} is accepted"
        )));
    }
    if metric == pb::Metric::Cosine && norm2 < 1e-30 {
        return Err(Error::invalid(format!(
            "{field} is a zero vector; cosine distance is undefined for it"
        )));
    }
    Ok(())
}

/// Checks a perceptual hash against the collection's bit length.
pub fn bits(field: &str, bits: &[u8], dim: u32) -> Result<()> {
    if bits.len() * 8 != dim as usize {
        return Err(Error::invalid(format!(
            "{field} {} has {} bytes; the collection's hashes are {dim} bits ({} bytes)",
            show_bytes(bits),
            bits.len(),
            dim / 8
        )));
    }
    Ok(())
}

/// Bytes for an error message: hex, the first 40 bytes at most.
pub fn show_bytes(b: &[u8]) -> String {
    if b.len() > 40 {
        format!("0x{}… ({} bytes)", hex::encode(&b[..40]), b.len())
    } else {
        format!("0x{}", hex::encode(b))
    }
}

/// A perceptual hash's quality: 0..=100.
pub fn quality(field: &str, q: u32) -> Result<()> {
    if q > 100 {
        return Err(Error::invalid(format!(
            "{field} is {q}; a hash's quality is 0 to 100"
        )));
    }
    Ok(())
}

/// A digest of a file: MD5 (16 bytes), SHA-1 (20) or SHA-256 (32); empty
/// is allowed where `optional`. Returns the algorithm's name.
pub fn digest(field: &str, d: &[u8], want: Option<usize>) -> Result<&'static str> {
    let name = match d.len() {
        16 => "md5",
        20 => "sha1",
        32 => "sha256",
        n => {
            return Err(Error::invalid(format!(
                "{field} {} has {n} bytes; a digest is 16 (MD5), 20 (SHA-1) or 32 (SHA-256) bytes",
                show_bytes(d)
            )));
        }
    };
    if let Some(w) = want
        && w != d.len()
    {
        return Err(Error::invalid(format!(
            "{field} {} has {} bytes; it must be {w}",
            show_bytes(d),
            d.len()
        )));
    }
    Ok(name)
}

/// Metadata limits and formats.
pub fn metadata(field: &str, m: &pb::Metadata) -> Result<()> {
    let strings = [
        ("media_id", &m.media_id),
        ("upload_id", &m.upload_id),
        ("case_id", &m.case_id),
        ("agency", &m.agency),
        ("series_label", &m.series_label),
    ];
    for (name, s) in strings {
        if s.len() > MAX_META_STRING {
            return Err(Error::invalid(format!(
                "{field}.{name} {} is {} bytes; at most {MAX_META_STRING}",
                show(s),
                s.len()
            )));
        }
    }
    country(&format!("{field}.country"), &m.country, true)?;
    if m.tags.len() > MAX_TAGS {
        return Err(Error::invalid(format!(
            "{field}.tags has {} entries; at most {MAX_TAGS}",
            m.tags.len()
        )));
    }
    for (i, t) in m.tags.iter().enumerate() {
        if t.is_empty() || t.len() > 64 {
            return Err(Error::invalid(format!(
                "{field}.tags[{i}] {} must be 1 to 64 bytes",
                show(t)
            )));
        }
    }
    Ok(())
}

/// The officially assigned ISO 3166-1 alpha-2 codes (249, as in Debian's
/// iso-codes 4.15), sorted. User-assigned (`XK`, `AA`, `QM`–`QZ`, `XA`–`XZ`,
/// `ZZ`) and reserved codes (`UK`, `EL`, `EU`) are not countries here: a
/// filter on them would match nothing that was stored under the real code.
pub const ISO_3166_ALPHA2: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Codes people use for a country that has another ISO code.
const COUNTRY_ALIASES: &[(&str, &str)] = &[
    ("UK", "GB"), // the United Kingdom's own usage and its internet domain
    ("EL", "GR"), // Greece in European Union usage
];

/// Whether `c` is an assigned ISO 3166-1 alpha-2 code.
pub fn is_country(c: &str) -> bool {
    ISO_3166_ALPHA2.binary_search(&c).is_ok()
}

/// An assigned ISO 3166-1 alpha-2 country code (see [`ISO_3166_ALPHA2`]),
/// with a hint for a well-known alias (`UK` → `GB`) or lower case.
pub fn country(field: &str, c: &str, allow_empty: bool) -> Result<()> {
    if (c.is_empty() && allow_empty) || is_country(c) {
        return Ok(());
    }
    let upper = c.to_ascii_uppercase();
    let hint = COUNTRY_ALIASES
        .iter()
        .find(|(alias, _)| *alias == upper)
        .map(|(_, code)| *code)
        .or_else(|| is_country(&upper).then_some(upper.as_str()));
    Err(Error::invalid(match hint {
        Some(code) => format!(
            "{field} {} is not an ISO 3166-1 alpha-2 country code; did you mean {code}?",
            show(c)
        ),
        None => format!(
            "{field} {} is not an assigned ISO 3166-1 alpha-2 country code (two upper-case letters, e.g. \"DE\")",
            show(c)
        ),
    }))
}

/// `exclude_same_upload` / `exclude_same_case` take the upload and case of
/// the stored query point; a vector query has none, and ignoring the flag
/// would return the very upload the caller asked to leave out.
pub fn exclusions(
    queries: &[pb::Query],
    exclude_same_upload: bool,
    exclude_same_case: bool,
) -> Result<()> {
    let field = match (exclude_same_upload, exclude_same_case) {
        (false, false) => return Ok(()),
        (true, _) => "exclude_same_upload",
        (false, true) => "exclude_same_case",
    };
    let vector = queries.iter().position(|q| {
        matches!(
            q.query,
            Some(pb::query::Query::Vector(_) | pb::query::Query::Bits(_))
        )
    });
    if let Some(i) = vector {
        return Err(Error::invalid(format!(
            "{field} applies to point_id queries, but queries[{i}] is a vector or hash; filter by filter.upload_ids_none or filter.case_ids_none instead"
        )));
    }
    Ok(())
}

/// `k` of a search.
pub fn k(k: u32) -> Result<()> {
    if k == 0 || k > MAX_K {
        return Err(Error::invalid(format!(
            "k is {k}; it must be between 1 and {MAX_K}"
        )));
    }
    Ok(())
}

/// `ef` of a search: 0 means the default; otherwise at most [`MAX_EF`].
pub fn ef(ef: u32) -> Result<()> {
    if ef > MAX_EF {
        return Err(Error::invalid(format!(
            "ef is {ef}; it must be at most {MAX_EF} (0 = default)"
        )));
    }
    Ok(())
}

/// `max_distance` of a search: a finite distance, if set.
pub fn max_distance(d: Option<f32>) -> Result<()> {
    match d {
        Some(m) if !m.is_finite() => Err(Error::invalid(format!(
            "max_distance is {m}; it must be a finite distance"
        ))),
        _ => Ok(()),
    }
}

/// Number of entries of a repeated request field.
pub fn count(field: &str, n: usize, max: usize) -> Result<()> {
    if n > max {
        return Err(Error::ResourceExhausted(format!(
            "{field} has {n} entries; at most {max} per request"
        )));
    }
    Ok(())
}

/// A request's list of point ids (field `field`): at most [`MAX_IDS`], each
/// a valid id (the message names `field[i]`).
pub fn point_ids(field: &str, ids: &[String]) -> Result<()> {
    count(field, ids.len(), MAX_IDS)?;
    for (i, id) in ids.iter().enumerate() {
        point_id(&format!("{field}[{i}]"), id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(collection_name("name", "images_v2-a").is_ok());
        for bad in ["", "Images", "a b", "a/b", "..", &"x".repeat(65)] {
            let e = collection_name("name", bad).unwrap_err().to_string();
            assert!(e.starts_with("name"), "{e}");
        }
    }

    #[test]
    fn vectors() {
        assert!(vector("v", &[1.0, 0.0], 2, pb::Metric::Cosine).is_ok());
        assert!(
            vector("v", &[1.0], 2, pb::Metric::Cosine)
                .unwrap_err()
                .to_string()
                .contains("dimension is 2")
        );
        assert!(
            vector("v", &[f32::NAN, 0.0], 2, pb::Metric::L2)
                .unwrap_err()
                .to_string()
                .contains("v[0] is NaN")
        );
        assert!(
            vector("v", &[0.0, f32::INFINITY], 2, pb::Metric::L2)
                .unwrap_err()
                .to_string()
                .contains("v[1] is inf")
        );
        assert!(
            vector("v", &[0.0, 0.0], 2, pb::Metric::Cosine)
                .unwrap_err()
                .to_string()
                .contains("zero vector")
        );
        assert!(vector("v", &[0.0, 0.0], 2, pb::Metric::L2).is_ok());
        assert!(
            vector("v", &[3e18, 0.0], 2, pb::Metric::Dot)
                .unwrap_err()
                .to_string()
                .contains("squared norm")
        );
    }

    #[test]
    fn countries_and_ids() {
        assert!(country("c", "DE", false).is_ok());
        assert!(country("c", "", true).is_ok());
        assert!(country("c", "", false).is_err());
        for bad in [
            "de", "DEU", "D", "Germany", "D1", "ZZ", "XK", "EU", "UK", "EL",
        ] {
            assert!(country("c", bad, true).is_err(), "{bad}");
        }
        for (bad, hint) in [("UK", "GB"), ("EL", "GR"), ("uk", "GB"), ("de", "DE")] {
            let e = country("m.country", bad, true).unwrap_err().to_string();
            assert!(e.starts_with(&format!("m.country {bad:?}")), "{e}");
            assert!(e.ends_with(&format!("did you mean {hint}?")), "{e}");
        }
        let e = country("c", "ZZ", true).unwrap_err().to_string();
        assert!(!e.contains("did you mean"), "{e}");
        // The table is sorted (binary search), without repeats, and holds
        // only two-letter upper-case codes.
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ISO_3166_ALPHA2
                .iter()
                .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
        for c in ["AD", "GB", "GR", "ZW", "SS", "BQ"] {
            assert!(is_country(c), "{c}");
        }
        assert!(point_id("id", "a#1").is_ok());
        assert!(point_id("id", "").is_err());
        assert!(point_id("id", &"x".repeat(257)).is_err());
        assert!(point_id("id", "a\nb").is_err());
    }
}
