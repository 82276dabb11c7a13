//! Project VIC (VICS) JSON case files, as forensic tools (Griffeye, XAMN,
//! FTK) exchange them: an OData envelope whose `value[]` holds cases, each
//! case with a `Media[]` list of files by digest with their
//! categorisation. The specification is not public; the shape read here,
//! and how each field maps onto an exact-hash entry, is in the README
//! ("VICS interchange").
//!
//! Reading is one pass of typed visitors over the text, so that a bad
//! value is refused with the line and column where it ends and the path of
//! its field (`value[0].Media[12].MD5`). Every key is kept, known or not, in
//! its order: a file read here and written back out has the same fields
//! with the same values (JSON numbers, strings and nesting as given; only
//! whitespace and the key order *inside* nested objects such as
//! `MediaMetadata[]` entries may differ).

use std::fmt;

use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// A JSON object with its keys in the order they came.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ordered(pub Vec<(String, Value)>);

impl Ordered {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl serde::Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor {
            path: String::new(),
            check: &|_, _| Ok(()),
        })
        .map(|(o, _)| o)
    }
}

/// One media of a case: its fields as given, and what vidx takes from them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Media {
    pub fields: Ordered,
    pub md5: Vec<u8>,
    pub sha1: Vec<u8>,
    pub sha256: Vec<u8>,
    /// `Category` as text ("" when absent or null).
    pub category: String,
    pub series: String,
    pub victim_identified: bool,
}

/// One case: its fields without `Media` (its place kept as a `null`), and
/// its media.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Case {
    pub id: String,
    pub fields: Ordered,
    pub media: Vec<Media>,
}

/// A whole file: the envelope's fields without `value` (its place kept as
/// a `null`), and the cases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    pub envelope: Ordered,
    pub cases: Vec<Case>,
}

/// A refused file: where, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Reads a VICS case file, refusing it whole at the first bad value.
pub fn parse(text: &str) -> Result<File, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let file = FileSeed
        .deserialize(&mut de)
        .and_then(|f| de.end().map(|_| f));
    file.map_err(|e| {
        let full = e.to_string();
        let message = match full.rfind(" at line ") {
            Some(at) => full[..at].to_string(),
            None => full,
        };
        ParseError {
            line: e.line(),
            column: e.column(),
            message,
        }
    })
}

/// Writes cases back out as a VICS file: `envelope` with `value` holding
/// `cases`, pretty-printed, every object's keys in their original order.
pub fn write(envelope: &Ordered, cases: &[Case]) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&FileOut { envelope, cases })
}

struct FileOut<'a> {
    envelope: &'a Ordered,
    cases: &'a [Case],
}

impl serde::Serialize for FileOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let mut wrote = false;
        for (k, v) in &self.envelope.0 {
            if k == "value" {
                m.serialize_entry(k, &CasesOut(self.cases))?;
                wrote = true;
            } else {
                m.serialize_entry(k, v)?;
            }
        }
        if !wrote {
            m.serialize_entry("value", &CasesOut(self.cases))?;
        }
        m.end()
    }
}

struct CasesOut<'a>(&'a [Case]);

impl serde::Serialize for CasesOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(CaseOut))
    }
}

struct CaseOut<'a>(&'a Case);

impl serde::Serialize for CaseOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        let mut wrote = false;
        for (k, v) in &self.0.fields.0 {
            if k == "Media" {
                m.serialize_entry(k, &MediaOut(&self.0.media))?;
                wrote = true;
            } else {
                m.serialize_entry(k, v)?;
            }
        }
        if !wrote {
            m.serialize_entry("Media", &MediaOut(&self.0.media))?;
        }
        m.end()
    }
}

struct MediaOut<'a>(&'a [Media]);

impl serde::Serialize for MediaOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|m| &m.fields))
    }
}

// ---- reading ---------------------------------------------------------------

type Check<'c> = &'c dyn Fn(&str, &Value) -> Result<(), String>;

/// Reads an object into [`Ordered`], refusing a repeated key and asking
/// `check(key, value)` of each field as it is read (so that an error
/// carries the position of that value). Keys whose value is an array or
/// object to be read by a seed of their own are handled by the callers.
struct ObjectVisitor<'c> {
    path: String,
    check: Check<'c>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = (Ordered, ());

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object at {}", show_path(&self.path))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Ordered::default();
        while let Some(key) = map.next_key::<String>()? {
            let v: Value = map.next_value()?;
            self.add(&mut out, key, v).map_err(de::Error::custom)?;
        }
        Ok((out, ()))
    }
}

impl ObjectVisitor<'_> {
    fn add(&self, out: &mut Ordered, key: String, v: Value) -> Result<(), String> {
        let at = join(&self.path, &key);
        if out.0.iter().any(|(k, _)| *k == key) {
            return Err(format!("{at}: the key appears twice in one object"));
        }
        (self.check)(&key, &v).map_err(|m| format!("{at}: {m}"))?;
        out.0.push((key, v));
        Ok(())
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn show_path(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

struct FileSeed;

impl<'de> DeserializeSeed<'de> for FileSeed {
    type Value = File;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<File, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed {
    type Value = File;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a VICS file: a JSON object with \"value\": [cases]")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<File, A::Error> {
        let mut file = File::default();
        let mut seen_value = false;
        let plain = ObjectVisitor {
            path: String::new(),
            check: &|_, _| Ok(()),
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "value" {
                if seen_value {
                    return Err(de::Error::custom(
                        "value: the key appears twice in one object",
                    ));
                }
                seen_value = true;
                file.cases = map.next_value_seed(CasesSeed)?;
                file.envelope.0.push((key, Value::Null));
            } else {
                let v: Value = map.next_value()?;
                plain
                    .add(&mut file.envelope, key, v)
                    .map_err(de::Error::custom)?;
            }
        }
        if !seen_value {
            return Err(de::Error::custom(
                "no \"value\" list: a VICS file is an OData envelope {\"value\": [cases with Media]}",
            ));
        }
        Ok(file)
    }
}

struct CasesSeed;

impl<'de> DeserializeSeed<'de> for CasesSeed {
    type Value = Vec<Case>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Case>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CasesSeed {
    type Value = Vec<Case>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("value: a list of cases")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Case>, A::Error> {
        let mut cases: Vec<Case> = Vec::new();
        while let Some(c) = seq.next_element_seed(CaseSeed(cases.len()))? {
            if cases.iter().any(|x| x.id == c.id) {
                return Err(de::Error::custom(format!(
                    "value[{}].CaseID: case {:?} appears twice in the file",
                    cases.len(),
                    c.id
                )));
            }
            cases.push(c);
        }
        Ok(cases)
    }
}

struct CaseSeed(usize);

impl<'de> DeserializeSeed<'de> for CaseSeed {
    type Value = Case;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Case, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CaseSeed {
    type Value = Case;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value[{}]: a case object", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Case, A::Error> {
        let path = format!("value[{}]", self.0);
        let mut case = Case::default();
        let mut seen_media = false;
        let fields = ObjectVisitor {
            path: path.clone(),
            check: &check_case_field,
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "Media" {
                if seen_media {
                    return Err(de::Error::custom(format!(
                        "{path}.Media: the key appears twice in one object"
                    )));
                }
                seen_media = true;
                case.media = map.next_value_seed(MediaListSeed { case: self.0 })?;
                case.fields.0.push((key, Value::Null));
            } else {
                let v: Value = map.next_value()?;
                fields
                    .add(&mut case.fields, key, v)
                    .map_err(de::Error::custom)?;
            }
        }
        case.id = case_id(&case.fields).ok_or_else(|| {
            de::Error::custom(format!(
                "{path}: the case has no CaseID (or CaseNumber) to file its media under"
            ))
        })?;
        if !seen_media {
            return Err(de::Error::custom(format!(
                "{path}: the case has no Media list"
            )));
        }
        Ok(case)
    }
}

/// `CaseID`, else `CaseNumber`, as text.
fn case_id(fields: &Ordered) -> Option<String> {
    ["CaseID", "CaseNumber"]
        .iter()
        .find_map(|k| match fields.get(k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

fn check_case_field(key: &str, v: &Value) -> Result<(), String> {
    match key {
        "CaseID" | "CaseNumber" => match v {
            Value::String(s) if s.len() <= 256 => Ok(()),
            Value::Number(n) if n.is_u64() || n.is_i64() => Ok(()),
            Value::Null => Ok(()),
            _ => Err(format!(
                "expected a string of at most 256 bytes or an integer, found {}",
                kind(v)
            )),
        },
        _ => Ok(()),
    }
}

struct MediaListSeed {
    case: usize,
}

impl<'de> DeserializeSeed<'de> for MediaListSeed {
    type Value = Vec<Media>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Media>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MediaListSeed {
    type Value = Vec<Media>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "value[{}].Media: a list of media", self.case)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Media>, A::Error> {
        let mut media = Vec::new();
        while let Some(m) = seq.next_element_seed(MediaSeed {
            path: format!("value[{}].Media[{}]", self.case, media.len()),
        })? {
            media.push(m);
        }
        Ok(media)
    }
}

struct MediaSeed {
    path: String,
}

impl<'de> DeserializeSeed<'de> for MediaSeed {
    type Value = Media;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Media, D::Error> {
        let path = self.path.clone();
        let (fields, ()) = d.deserialize_map(ObjectVisitor {
            path: self.path,
            check: &check_media_field,
        })?;
        media_of(fields).map_err(|m| de::Error::custom(format!("{path}: {m}")))
    }
}

/// What vidx takes from a checked media object.
fn media_of(fields: Ordered) -> Result<Media, String> {
    let hex = |k: &str| match fields.get(k) {
        Some(Value::String(s)) => hex::decode(s).unwrap_or_default(),
        _ => Vec::new(),
    };
    let text = |k: &str| match fields.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let m = Media {
        md5: hex("MD5"),
        sha1: hex("SHA1"),
        sha256: hex("SHA256"),
        category: text("Category"),
        series: text("Series"),
        victim_identified: fields.get("VictimIdentified") == Some(&Value::Bool(true)),
        fields,
    };
    if m.md5.is_empty() && m.sha1.is_empty() && m.sha256.is_empty() {
        return Err("the media has no MD5, SHA1 or SHA256: nothing to match it by".into());
    }
    Ok(m)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn hex_digits(v: &Value, n: usize) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) if s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        Value::String(s) => Err(format!(
            "expected {n} hex digits, found {}",
            crate::validate::show(s)
        )),
        _ => Err(format!("expected {n} hex digits, found {}", kind(v))),
    }
}

/// The known media fields' types; unknown fields may hold anything.
fn check_media_field(key: &str, v: &Value) -> Result<(), String> {
    let is = |ok: bool, what: &str| {
        if ok || v.is_null() {
            Ok(())
        } else {
            Err(format!("expected {what}, found {}", kind(v)))
        }
    };
    let short = |what: &str| match v {
        Value::String(s) if s.len() > 256 => {
            Err(format!("{what} of {} bytes; at most 256", s.len()))
        }
        _ => is(v.is_string(), what),
    };
    match key {
        "MD5" => hex_digits(v, 32),
        "SHA1" => hex_digits(v, 40),
        "SHA256" => hex_digits(v, 64),
        "PhotoDNA" => match v {
            Value::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "expected base64 (PhotoDNA), found {}: {e}",
                        crate::validate::show(s)
                    )
                }),
            _ => is(false, "a base64 string (PhotoDNA)"),
        },
        "Category" => is(v.as_i64().is_some(), "an integer category"),
        "VictimIdentified" | "OffenderIdentified" | "IsDistributed" => {
            is(v.is_boolean(), "true or false")
        }
        "Series" => short("a series name"),
        "MediaSize" => is(
            v.as_u64().is_some(),
            "a size in bytes (a whole number >= 0)",
        ),
        "MimeType" | "RelativeFilePath" | "Comments" => is(v.is_string(), "a string"),
        "Tags" => is(
            v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "a string or a list of strings",
        ),
        "DateUpdated" => match v {
            Value::String(s) if looks_like_date(s) => Ok(()),
            Value::String(s) => Err(format!(
                "expected an ISO 8601 date (YYYY-MM-DD...), found {}",
                crate::validate::show(s)
            )),
            _ => is(false, "an ISO 8601 date string"),
        },
        "MediaMetadata" => is(
            v.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
            "a list of objects",
        ),
        _ => Ok(()),
    }
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
  "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml/$metadata#Cases",
  "value": [
    {
      "CaseID": "C-1",
      "SourceApplicationName": "Example",
      "Media": [
        {
          "MediaID": 1,
          "MD5": "0123456789ABCDEF0123456789ABCDEF",
          "Category": 1,
          "Series": "S-7",
          "VictimIdentified": true,
          "Custom": {"z": 1, "a": [1, 2.5, null]}
        },
        {
          "MediaID": 2,
          "SHA1": "0123456789abcdef0123456789abcdef01234567",
          "PhotoDNA": "AAECAw==",
          "MediaMetadata": [{"Name": "Make", "Value": "X"}]
        }
      ],
      "Extra": 5
    }
  ]
}"#;

    #[test]
    fn reads_what_it_writes_field_for_field_in_order() {
        let f = parse(SAMPLE).unwrap();
        assert_eq!(f.cases.len(), 1);
        let c = &f.cases[0];
        assert_eq!(c.id, "C-1");
        assert_eq!(c.media[0].category, "1");
        assert_eq!(c.media[0].series, "S-7");
        assert!(c.media[0].victim_identified);
        assert_eq!(c.media[0].md5.len(), 16);
        assert_eq!(c.media[1].sha1.len(), 20);
        let out = write(&f.envelope, &f.cases).unwrap();
        let a: Value = serde_json::from_str(SAMPLE).unwrap();
        let b: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(a, b);
        assert_eq!(parse(&out).unwrap(), f);
        // Media keys stay in their order.
        assert!(out.find("\"MediaID\": 1").unwrap() < out.find("\"Custom\"").unwrap());
    }

    #[test]
    fn a_bad_value_is_refused_with_its_line_and_field() {
        let bad = SAMPLE.replace("\"Category\": 1", "\"Category\": \"one\"");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 11, "{e}");
        assert!(e.message.contains("value[0].Media[0].Category"), "{e}");
        let bad = SAMPLE.replace("0123456789abcdef01234567\"", "0123456789abcdef0123456\"");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 18, "{e}");
        assert!(e.message.contains("value[0].Media[1].SHA1"), "{e}");
        let e = parse("{\"value\": [ {\"CaseID\": \"x\", \"Media\": [ {\"MediaID\": 3} ] } ] }")
            .unwrap_err();
        assert!(
            e.message
                .contains("value[0].Media[0]: the media has no MD5"),
            "{e}"
        );
        let e = parse("{\"value\": [ }").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        let e = parse(&SAMPLE.replace("\"Extra\": 5", "\"Extra\": 5, \"Extra\": 6")).unwrap_err();
        assert!(
            e.message.contains("value[0].Extra: the key appears twice"),
            "{e}"
        );
    }
}
