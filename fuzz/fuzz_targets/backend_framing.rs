//! Arbitrary bytes, split into arbitrary chunks, through the backend framer: never a panic,
//! and the chunked parse agrees with the whole-buffer parse.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgcdc_core::wire::Framer;

fn parse_all(chunks: &[&[u8]], max: usize) -> Vec<String> {
    let mut framer = Framer::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match framer.parse(&mut buf) {
                Ok(Some(m)) => out.push(format!("{m:?}")),
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("error {e}"));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, rest)) = data.split_first() else {
        return;
    };
    let max = 1 << 16;
    let whole = parse_all(&[rest], max);
    let step = usize::from(split_seed % 13) + 1;
    let chunks: Vec<&[u8]> = rest.chunks(step).collect();
    let chunked = parse_all(&chunks, max);
    assert_eq!(whole, chunked);
});
