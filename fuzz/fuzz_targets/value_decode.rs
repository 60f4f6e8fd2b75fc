//! Arbitrary bytes decoded as a value of an arbitrary type, in text and binary format: never a
//! panic, and a value that decodes prints (Display) without failing. The first two bytes pick
//! the type: a built-in OID (below 16384) or one of a few user types registered here (enum,
//! domains, a range over a domain, arrays of them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcdc_core::value::{Oid, TypeKind, TypeRegistry, decode_binary, decode_text};

const ENUM: Oid = Oid(20_001);
const DOMAIN: Oid = Oid(20_002);
const RANGE: Oid = Oid(20_003);
const ENUM_ARRAY: Oid = Oid(20_004);
const RANGE_ARRAY: Oid = Oid(20_005);
const USER: [Oid; 5] = [ENUM, DOMAIN, RANGE, ENUM_ARRAY, RANGE_ARRAY];

fn registry() -> TypeRegistry {
    let mut r = TypeRegistry::new();
    r.register(ENUM, TypeKind::Enum);
    r.register(DOMAIN, TypeKind::Domain { base: Oid(1700) });
    r.register(RANGE, TypeKind::Range { subtype: DOMAIN });
    r.register(ENUM_ARRAY, TypeKind::Array { element: ENUM });
    r.register(RANGE_ARRAY, TypeKind::Array { element: RANGE });
    r
}

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let pick = u16::from_le_bytes([*a, *b]);
    let oid = match USER.get(usize::from(pick % 64)) {
        Some(user) if pick >= 0xF000 => *user,
        _ => Oid(u32::from(pick % 16_384)),
    };
    let reg = registry();
    if let Ok(v) = decode_text(oid, -1, rest, &reg) {
        let _ = v.to_string();
    }
    if let Ok(v) = decode_binary(oid, rest, &reg) {
        let _ = v.to_string();
    }
});
