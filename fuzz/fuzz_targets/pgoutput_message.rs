//! One arbitrary payload through the pgoutput decoder, outside and inside a stream block:
//! never a panic, a failed decode leaves the stream state as it was, and a message that
//! decodes encodes back to the same bytes.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pgcdc_core::pgoutput::{Decoder, PgOutputMessage, Xid, encode};

fuzz_target!(|data: &[u8]| {
    let payload = Bytes::copy_from_slice(data);
    for in_stream in [false, true] {
        let mut decoder = Decoder::new();
        if in_stream {
            let mut start = BytesMut::new();
            let open = PgOutputMessage::StreamStart {
                xid: Xid(7),
                first_segment: true,
            };
            encode::message(&open, &mut start).expect("Stream Start encodes");
            decoder
                .decode(start.freeze())
                .expect("Stream Start decodes");
        }
        let before = decoder.stream_xid();
        match decoder.decode(payload.clone()) {
            Ok(msg) => {
                let _ = format!("{msg:?}");
                // Whatever decodes is exactly what the encoder writes.
                let mut again = BytesMut::new();
                encode::message(&msg, &mut again).expect("a decoded message encodes");
                assert_eq!(&again[..], data, "re-encoding {msg:?}");
            }
            Err(e) => {
                let _ = e.to_string();
                assert_eq!(
                    decoder.stream_xid(),
                    before,
                    "a failed decode changed the state"
                );
            }
        }
    }
});
