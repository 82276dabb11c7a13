//! Who may do what: the four roles, the one table of the role every RPC
//! needs, the [`Caller`] a request runs as, and how a client certificate
//! names an agency and a role.
//!
//! Roles are ordered; each has every right of the ones before it:
//!
//! | role | may |
//! | --- | --- |
//! | `reader` | Search, Get, ListCollections, DescribeCollection, series reads (ListSeries, GetSeries, SeriesOfMedia), hash-set reads (LookupHashes, ListHashSets, ExportHashes), WhoAmI |
//! | `contributor` | + Upsert, Delete, Flush, UpdateMetadata, RestrictUpload, ListRestrictions (its own agency's points and uploads), ImportHashes (into its own agency's hash sets) |
//! | `analyst` | + LinkSeries, LinkUpload, Triage, Calibrate, series reviews (ReviewSeries) |
//! | `admin` | + CreateCollection, DropCollection, CreateToken, ListTokens, RevokeToken, CreateSnapshot, creating (ImportHashes into a new set) and DropHashSet; any agency's points and hash sets |

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::collection::restrict::Restrictions;
use crate::error::Error;
use crate::index::filter::Filter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Contributor,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Reader, Role::Contributor, Role::Analyst, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Contributor => "contributor",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("role {s:?} is not one of reader, contributor, analyst, admin"))
    }
}

/// The gRPC service whose methods the table covers.
pub const SERVICE: &str = "vidx.v1.VectorIndex";

/// The least role each RPC of [`SERVICE`] needs. Every method of the
/// service must be here (a test enumerates the descriptor set); a method
/// that is not is refused to everyone.
pub const RPC_ROLES: &[(&str, Role)] = &[
    ("ListCollections", Role::Reader),
    ("DescribeCollection", Role::Reader),
    ("Search", Role::Reader),
    ("Get", Role::Reader),
    ("WhoAmI", Role::Reader),
    ("ListSeries", Role::Reader),
    ("GetSeries", Role::Reader),
    ("SeriesOfMedia", Role::Reader),
    // Hash sets are digests of known material, readable like a collection.
    ("LookupHashes", Role::Reader),
    ("ListHashSets", Role::Reader),
    ("ExportHashes", Role::Reader),
    ("Upsert", Role::Contributor),
    ("Delete", Role::Contributor),
    ("Flush", Role::Contributor),
    ("UpdateMetadata", Role::Contributor),
    ("RestrictUpload", Role::Contributor),
    ("ListRestrictions", Role::Contributor),
    // Into a set of the caller's agency; creating a set needs an admin
    // (checked by the handler, which knows whether the set exists).
    ("ImportHashes", Role::Contributor),
    ("LinkSeries", Role::Analyst),
    ("LinkUpload", Role::Analyst),
    ("Triage", Role::Analyst),
    ("ReviewSeries", Role::Analyst),
    // Reads the labelled material's distances, as linking does.
    ("Calibrate", Role::Analyst),
    ("CreateCollection", Role::Admin),
    ("DropCollection", Role::Admin),
    ("CreateToken", Role::Admin),
    ("ListTokens", Role::Admin),
    ("RevokeToken", Role::Admin),
    // A snapshot holds every point, restricted ones included.
    ("CreateSnapshot", Role::Admin),
    ("DropHashSet", Role::Admin),
];

/// RPCs whose response is a stream: audited when they start and when they
/// end, and counted against the concurrent-stream cap (Upsert's request is
/// a stream too).
pub const STREAMING_RPCS: &[&str] = &[
    "LinkSeries",
    "Triage",
    "Upsert",
    "CreateSnapshot",
    "ImportHashes",
    "ExportHashes",
];

/// The role `method` needs; `None` for a method the table does not know.
pub fn role_for(method: &str) -> Option<Role> {
    RPC_ROLES
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, r)| *r)
}

/// Who a request runs as.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Empty only for an open (unauthenticated, loopback) server.
    pub agency: String,
    pub role: Role,
    /// `tok-…` or `cert:…` (never the secret), or `open`.
    pub credential: String,
    /// The collections the credential is limited to; `None` = all.
    pub collections: Option<BTreeSet<String>>,
    /// No authentication: every caller is an admin of no agency and sees
    /// everything.
    pub open: bool,
}

impl Caller {
    /// The caller of a server running open (no credentials configured).
    pub fn open() -> Caller {
        Caller {
            agency: String::new(),
            role: Role::Admin,
            credential: "open".into(),
            collections: None,
            open: true,
        }
    }

    /// PERMISSION_DENIED unless the role allows `action` (an RPC name or a
    /// finer action such as "Triage with store").
    pub fn require(&self, role: Role, action: &str) -> Result<(), Error> {
        if self.role >= role {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "role {} of agency {} may not {action}: it needs role {role} or higher",
            self.role, self.agency
        )))
    }

    /// PERMISSION_DENIED unless the credential may use `collection`.
    pub fn may_use(&self, collection: &str) -> Result<(), Error> {
        match &self.collections {
            Some(allowed) if !allowed.contains(collection) => {
                Err(Error::PermissionDenied(format!(
                    "credential {} of agency {} (role {}) may not use collection {collection:?}; it is limited to {}",
                    self.credential,
                    self.agency,
                    self.role,
                    allowed.iter().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
            _ => Ok(()),
        }
    }

    /// The visibility predicate of this caller: the restricted uploads it
    /// may not see; `None` when it may see everything.
    pub fn visibility(&self, restrictions: &Restrictions) -> Option<Filter> {
        if self.open {
            return None;
        }
        restrictions.hidden_from(&self.agency)
    }

    /// May write points of `agency` (its own; an admin any).
    pub fn may_write_for(&self, agency: &str) -> bool {
        self.open || self.role == Role::Admin || agency == self.agency
    }
}

/// Checks an agency name: 1 to 64 bytes of `[A-Za-z0-9._-]`.
pub fn check_agency(field: &str, agency: &str) -> Result<(), String> {
    let ok = !agency.is_empty()
        && agency.len() <= 64
        && agency
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} {agency:?} is not an agency name: 1 to 64 of A-Z a-z 0-9 . _ -"
        ))
    }
}

/// What a client certificate says about its holder. The certificate's
/// subject names the agency in its Organization (O) and the role in its
/// Organizational Unit (OU), e.g. `/O=DE-BKA/OU=analyst/CN=ws-17`: the CA
/// that signs client certificates (`--client-ca`) grants roles. The
/// credential id is `cert:` and the first 16 hex digits of the
/// certificate's SHA-256, which `vidx token revoke` also takes.
#[derive(Clone, Debug, PartialEq)]
pub struct CertIdentity {
    pub agency: String,
    pub role: Role,
    pub credential: String,
}

/// The credential id of a DER certificate: `cert:` + 16 hex of its SHA-256.
pub fn cert_credential(der: &[u8]) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(der);
    format!("cert:{}", &hex::encode(h)[..16])
}

/// Reads agency (O) and role (OU) from a client certificate's subject.
pub fn cert_identity(der: &[u8]) -> Result<CertIdentity, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let credential = cert_credential(der);
    let agency = first(&mut subject.iter_organization()).ok_or_else(|| {
        format!(
            "client certificate {credential} names no agency: its subject has no O (Organization)"
        )
    })?;
    check_agency("the client certificate's O", &agency)?;
    let role = first(&mut subject.iter_organizational_unit()).ok_or_else(|| {
        format!("client certificate {credential} names no role: its subject has no OU (Organizational Unit)")
    })?;
    let role = role
        .parse::<Role>()
        .map_err(|e| format!("client certificate {credential}: OU {e}"))?;
    Ok(CertIdentity {
        agency,
        role,
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Reader < Role::Contributor && Role::Analyst < Role::Admin);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().unwrap_err().contains("root"));
    }

    #[test]
    fn every_rpc_of_the_service_has_a_role() {
        use prost::Message;
        let set = prost_types_free::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut methods = Vec::new();
        for file in &set.file {
            for svc in &file.service {
                if format!(
                    "{}.{}",
                    file.package.as_deref().unwrap_or(""),
                    svc.name.as_deref().unwrap_or("")
                ) == SERVICE
                {
                    methods.extend(svc.method.iter().filter_map(|m| m.name.clone()));
                }
            }
        }
        assert!(methods.len() >= 10, "{methods:?}");
        for m in &methods {
            assert!(
                role_for(m).is_some(),
                "RPC {m} has no role in RPC_ROLES: add it"
            );
        }
        for (m, _) in RPC_ROLES {
            assert!(
                methods.contains(&m.to_string()),
                "RPC_ROLES names {m}, which the service does not have"
            );
        }
    }

    /// Just enough of descriptor.proto to list a descriptor set's services
    /// and methods (prost-types is not a dependency).
    mod prost_types_free {
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct FileDescriptorSet {
            #[prost(message, repeated, tag = "1")]
            pub file: Vec<FileDescriptorProto>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct FileDescriptorProto {
            #[prost(string, optional, tag = "2")]
            pub package: Option<String>,
            #[prost(message, repeated, tag = "6")]
            pub service: Vec<ServiceDescriptorProto>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct ServiceDescriptorProto {
            #[prost(string, optional, tag = "1")]
            pub name: Option<String>,
            #[prost(message, repeated, tag = "2")]
            pub method: Vec<MethodDescriptorProto>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct MethodDescriptorProto {
            #[prost(string, optional, tag = "1")]
            pub name: Option<String>,
        }
    }
}
