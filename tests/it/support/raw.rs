//! Raw gRPC calls: bytes as the message, whatever they are, to see what the
//! server answers to a message that is not valid protobuf.

use prost::bytes::{Buf, BufMut};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = buf.chunk().to_vec();
        buf.advance(bytes.len());
        Ok(Some(bytes))
    }
}

async fn client(url: &str) -> tonic::client::Grpc<tonic::transport::Channel> {
    let ch = vidx::api::server::channel(url).await.expect("connect");
    tonic::client::Grpc::new(ch)
}

fn path(method: &str) -> http::uri::PathAndQuery {
    format!("/vidx.v1.VectorIndex/{method}")
        .parse()
        .expect("method path")
}

/// Calls unary `method` of `vidx.v1.VectorIndex` with `bytes` as the message.
pub async fn unary(url: &str, method: &str, bytes: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut g = client(url).await;
    g.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    g.unary(tonic::Request::new(bytes), path(method), RawCodec)
        .await
        .map(|r| r.into_inner())
}

/// Calls streaming `method` with `messages`; the first answer or the error.
pub async fn streaming(url: &str, method: &str, messages: Vec<Vec<u8>>) -> Result<Vec<u8>, Status> {
    let mut g = client(url).await;
    g.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut out = g
        .streaming(
            tonic::Request::new(tokio_stream::iter(messages)),
            path(method),
            RawCodec,
        )
        .await?
        .into_inner();
    match out.message().await? {
        Some(m) => Ok(m),
        None => Err(Status::unknown("the stream ended without a message")),
    }
}
