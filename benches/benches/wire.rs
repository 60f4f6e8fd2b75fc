//! Backend framing throughput (CopyData frames as the walsender sends them) and one SCRAM
//! client exchange.

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use bytes::{BufMut, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pgcdc_core::auth::{ScramBinding, ScramClient};
use pgcdc_core::wire::{BackendMessage, Framer};

/// 10,000 CopyData frames of 120 bytes, like XLogData carrying small pgoutput inserts.
fn copy_data_stream() -> BytesMut {
    let mut b = BytesMut::new();
    for i in 0..10_000u32 {
        b.put_u8(b'd');
        b.put_i32(4 + 120);
        b.put_u8(b'w');
        b.put_u32(i);
        b.put_slice(&[0x5a; 115]);
    }
    b
}

fn framing(c: &mut Criterion) {
    let stream = copy_data_stream();
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("copy_data_10k_frames", |bench| {
        bench.iter(|| {
            let mut buf = stream.clone();
            let mut framer = Framer::default();
            let mut n = 0usize;
            while let Ok(Some(m)) = framer.parse(&mut buf) {
                if let BackendMessage::CopyData(d) = m {
                    n += d.len();
                }
            }
            n
        })
    });
    g.finish();
}

fn scram(c: &mut Criterion) {
    // The RFC 7677 exchange (4096 PBKDF2 iterations dominate).
    let server_first =
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    c.bench_function("scram_client_4096_iterations", |bench| {
        bench.iter(|| {
            let mut client = ScramClient::with_printable_nonce(
                b"pencil",
                ScramBinding::None,
                "rOprNGfwEbeRWgbNEkqO",
            )
            .map(|c| c.with_username("user"));
            if let Ok(cl) = client.as_mut() {
                let _ = cl.client_first_message();
                let _ = cl.handle_server_first(server_first);
            }
        })
    });
}

criterion_group!(benches, framing, scram);
criterion_main!(benches);
