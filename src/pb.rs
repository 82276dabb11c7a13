//! The generated gRPC/protobuf types of `proto/vidx/v1/vidx.proto` (package
//! `vidx.v1`) and the encoded descriptor set that server reflection serves.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("vidx.v1");

/// Encoded `FileDescriptorSet` of the vidx protos, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vidx_descriptor");
