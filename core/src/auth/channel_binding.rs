//! The `tls-server-end-point` channel-binding data (RFC 5929) as PostgreSQL computes it.
//!
//! The hash of the server's DER certificate uses the digest of the certificate's signature
//! algorithm, except that MD5 and SHA-1 are replaced by SHA-256. Only as much DER as needed to
//! find the signature algorithm is parsed, with a small bounded reader.

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512, Sha512_224, Sha512_256};

use super::error::AuthError;

/// Computes the `tls-server-end-point` channel-binding data for a server's leaf certificate
/// in DER form: its hash under the digest PostgreSQL picks from the signature algorithm.
///
/// Fails when the certificate cannot be parsed, or when its signature algorithm has no digest
/// (Ed25519, Ed448) or is unknown; channel binding is then impossible with that certificate.
pub fn tls_server_end_point(cert_der: &[u8]) -> Result<Vec<u8>, AuthError> {
    let hash = signature_hash(cert_der)?;
    Ok(hash.digest(cert_der))
}

/// A digest usable for the end-point hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha512_224,
    Sha512_256,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha224 => Sha224::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha384 => Sha384::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
            Hash::Sha512_224 => Sha512_224::digest(data).to_vec(),
            Hash::Sha512_256 => Sha512_256::digest(data).to_vec(),
        }
    }
}

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
/// `[0]` constructed, context-specific (RSASSA-PSS-params.hashAlgorithm).
const TAG_CONTEXT_0: u8 = 0xA0;

fn malformed(reason: &'static str) -> AuthError {
    AuthError::MalformedCertificate { reason }
}

/// A bounded DER reader over a byte slice; it never reads past its input.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(input: &'a [u8]) -> Self {
        Der { rest: input }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one TLV and returns its tag and contents.
    fn any(&mut self) -> Result<(u8, &'a [u8]), AuthError> {
        let (&tag, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| malformed("unexpected end of data"))?;
        if tag & 0x1f == 0x1f {
            return Err(malformed(
                "multi-byte tags are not expected in a certificate",
            ));
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or_else(|| malformed("unexpected end of data in a length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 {
                return Err(malformed("indefinite lengths are not DER"));
            }
            if count > 4 {
                return Err(malformed("length too large"));
            }
            let (bytes, after) = rest
                .split_at_checked(count)
                .ok_or_else(|| malformed("unexpected end of data in a length"))?;
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (contents, after) = rest
            .split_at_checked(len)
            .ok_or_else(|| malformed("a length runs past the end of the data"))?;
        self.rest = after;
        Ok((tag, contents))
    }

    /// Reads one TLV that must have `tag`.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], AuthError> {
        match self.any()? {
            (t, contents) if t == tag => Ok(contents),
            _ => Err(malformed(what)),
        }
    }
}

/// Finds the digest for the certificate's outer signatureAlgorithm.
fn signature_hash(cert_der: &[u8]) -> Result<Hash, AuthError> {
    let mut outer = Der::new(cert_der);
    let certificate = outer.expect(TAG_SEQUENCE, "the certificate is not a SEQUENCE")?;
    if !outer.is_empty() {
        return Err(malformed("trailing data after the certificate"));
    }
    let mut cert = Der::new(certificate);
    cert.expect(TAG_SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let algorithm = cert.expect(TAG_SEQUENCE, "signatureAlgorithm is not a SEQUENCE")?;
    let mut algorithm = Der::new(algorithm);
    let oid = algorithm.expect(TAG_OID, "signatureAlgorithm has no OID")?;
    let oid = oid_to_string(oid)?;
    let params = if algorithm.is_empty() {
        None
    } else {
        Some(algorithm.any()?)
    };

    let impossible = |what: &str| AuthError::ChannelBindingImpossible {
        reason: format!("its signature algorithm {what} has no usable digest"),
    };
    Ok(match oid.as_str() {
        // MD5 and SHA-1 signatures hash with SHA-256 (RFC 5929 §4.1).
        "1.2.840.113549.1.1.4" // md5WithRSAEncryption
        | "1.2.840.113549.1.1.5" // sha1WithRSAEncryption
        | "1.3.14.3.2.29" // sha1WithRSAEncryption (OIW)
        | "1.2.840.10045.4.1" // ecdsa-with-SHA1
        | "1.2.840.10040.4.3" // dsa-with-sha1
        => Hash::Sha256,
        "1.2.840.113549.1.1.14" // sha224WithRSAEncryption
        | "1.2.840.10045.4.3.1" // ecdsa-with-SHA224
        | "2.16.840.1.101.3.4.3.1" // dsa-with-sha224
        => Hash::Sha224,
        "1.2.840.113549.1.1.11" // sha256WithRSAEncryption
        | "1.2.840.10045.4.3.2" // ecdsa-with-SHA256
        | "2.16.840.1.101.3.4.3.2" // dsa-with-sha256
        => Hash::Sha256,
        "1.2.840.113549.1.1.12" // sha384WithRSAEncryption
        | "1.2.840.10045.4.3.3" // ecdsa-with-SHA384
        => Hash::Sha384,
        "1.2.840.113549.1.1.13" // sha512WithRSAEncryption
        | "1.2.840.10045.4.3.4" // ecdsa-with-SHA512
        => Hash::Sha512,
        "1.2.840.113549.1.1.15" => Hash::Sha512_224, // sha512-224WithRSAEncryption
        "1.2.840.113549.1.1.16" => Hash::Sha512_256, // sha512-256WithRSAEncryption
        "1.2.840.113549.1.1.10" => pss_hash(params)?, // RSASSA-PSS
        "1.3.101.112" => return Err(impossible("Ed25519")),
        "1.3.101.113" => return Err(impossible("Ed448")),
        other => {
            return Err(AuthError::ChannelBindingImpossible {
                reason: format!("its signature algorithm (OID {other}) is not supported"),
            });
        }
    })
}

/// The hash of RSASSA-PSS parameters:
/// `SEQUENCE { hashAlgorithm [0] EXPLICIT AlgorithmIdentifier DEFAULT sha1, ... }`.
fn pss_hash(params: Option<(u8, &[u8])>) -> Result<Hash, AuthError> {
    let params = match params {
        Some((TAG_SEQUENCE, contents)) => contents,
        // Absent (or NULL) parameters mean every default, so SHA-1.
        None | Some((0x05, [])) => return Ok(Hash::Sha256),
        Some(_) => return Err(malformed("RSASSA-PSS parameters are not a SEQUENCE")),
    };
    let mut params = Der::new(params);
    if params.peek_tag() != Some(TAG_CONTEXT_0) {
        // hashAlgorithm omitted: the default SHA-1, which becomes SHA-256.
        return Ok(Hash::Sha256);
    }
    let explicit = params.expect(TAG_CONTEXT_0, "bad RSASSA-PSS hashAlgorithm")?;
    let identifier = Der::new(explicit).expect(TAG_SEQUENCE, "bad RSASSA-PSS hashAlgorithm")?;
    let oid = Der::new(identifier).expect(TAG_OID, "RSASSA-PSS hashAlgorithm has no OID")?;
    let oid = oid_to_string(oid)?;
    Ok(match oid.as_str() {
        "1.2.840.113549.2.5" | "1.3.14.3.2.26" => Hash::Sha256, // md5, sha1
        "2.16.840.1.101.3.4.2.4" => Hash::Sha224,
        "2.16.840.1.101.3.4.2.1" => Hash::Sha256,
        "2.16.840.1.101.3.4.2.2" => Hash::Sha384,
        "2.16.840.1.101.3.4.2.3" => Hash::Sha512,
        "2.16.840.1.101.3.4.2.5" => Hash::Sha512_224,
        "2.16.840.1.101.3.4.2.6" => Hash::Sha512_256,
        other => {
            return Err(AuthError::ChannelBindingImpossible {
                reason: format!("its RSASSA-PSS hash algorithm (OID {other}) is not supported"),
            });
        }
    })
}

/// Decodes OID contents to dotted form. Bounded: at most 64 bytes, arcs that fit in a `u64`.
fn oid_to_string(contents: &[u8]) -> Result<String, AuthError> {
    if contents.is_empty() || contents.len() > 64 {
        return Err(malformed("an OID has an unreasonable length"));
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    let mut in_arc = false;
    for &byte in contents {
        if !in_arc && byte == 0x80 {
            return Err(malformed("an OID arc is not minimally encoded"));
        }
        if value > (u64::MAX >> 7) {
            return Err(malformed("an OID arc is too large"));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
            in_arc = false;
        } else {
            in_arc = true;
        }
    }
    if in_arc {
        return Err(malformed("an OID ends in the middle of an arc"));
    }
    let mut out = String::new();
    for (i, arc) in arcs.iter().enumerate() {
        if i == 0 {
            let (first, second) = match arc {
                0..40 => (0, *arc),
                40..80 => (1, arc - 40),
                _ => (2, arc - 80),
            };
            out.push_str(&format!("{first}.{second}"));
        } else {
            out.push_str(&format!(".{arc}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a TLV with a minimal DER length.
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(contents);
        out
    }

    fn cert_with_algorithm(algorithm: &[u8]) -> Vec<u8> {
        let tbs = tlv(TAG_SEQUENCE, &[0x02, 0x01, 0x01]);
        let sig = tlv(0x03, &[0x00, 0xAA]);
        tlv(
            TAG_SEQUENCE,
            &[tbs, tlv(TAG_SEQUENCE, algorithm), sig].concat(),
        )
    }

    const SHA256_RSA: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
    ];

    #[test]
    fn oid_decoding() {
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]).unwrap(),
            "1.2.840.113549.1.1.11"
        );
        assert_eq!(oid_to_string(&[0x2b, 0x65, 0x70]).unwrap(), "1.3.101.112");
        assert_eq!(
            oid_to_string(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]).unwrap(),
            "2.16.840.1.101.3.4.2.1"
        );
        assert!(oid_to_string(&[]).is_err());
        assert!(oid_to_string(&[0x2a, 0x86]).is_err());
        assert!(oid_to_string(&[0x2a, 0x80, 0x01]).is_err());
        assert!(oid_to_string(&[0xff; 20]).is_err());
    }

    #[test]
    fn synthetic_sha256_rsa() {
        let cert = cert_with_algorithm(&[&SHA256_RSA[..], &[0x05, 0x00]].concat());
        assert_eq!(signature_hash(&cert).unwrap(), Hash::Sha256);
        assert_eq!(
            tls_server_end_point(&cert).unwrap(),
            Sha256::digest(&cert).to_vec()
        );
    }

    #[test]
    fn long_form_lengths() {
        // A 300-byte tbsCertificate forces a two-byte length.
        let tbs = tlv(TAG_SEQUENCE, &[0u8; 300]);
        assert_eq!(&tbs[..4], &[0x30, 0x82, 0x01, 0x2c]);
        let cert = tlv(
            TAG_SEQUENCE,
            &[tbs, tlv(TAG_SEQUENCE, &SHA256_RSA), tlv(0x03, &[0])].concat(),
        );
        assert_eq!(signature_hash(&cert).unwrap(), Hash::Sha256);
    }

    #[test]
    fn pss_defaults_and_params() {
        let pss = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
        ];
        // Empty parameter SEQUENCE: SHA-1 default, so SHA-256.
        let cert = cert_with_algorithm(&[&pss[..], &[0x30, 0x00]].concat());
        assert_eq!(signature_hash(&cert).unwrap(), Hash::Sha256);
        // No parameters at all.
        let cert = cert_with_algorithm(&pss);
        assert_eq!(signature_hash(&cert).unwrap(), Hash::Sha256);
        // hashAlgorithm = sha384.
        let sha384 = tlv(
            TAG_OID,
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
        );
        let hash_alg = tlv(
            TAG_CONTEXT_0,
            &tlv(TAG_SEQUENCE, &[sha384, vec![0x05, 0x00]].concat()),
        );
        let cert = cert_with_algorithm(&[&pss[..], &tlv(TAG_SEQUENCE, &hash_alg)].concat());
        assert_eq!(signature_hash(&cert).unwrap(), Hash::Sha384);
    }

    #[test]
    fn eddsa_and_unknown_are_impossible() {
        let ed25519 = cert_with_algorithm(&[0x06, 0x03, 0x2b, 0x65, 0x70]);
        let err = tls_server_end_point(&ed25519).unwrap_err();
        assert!(matches!(err, AuthError::ChannelBindingImpossible { .. }));
        assert!(err.to_string().contains("Ed25519"), "{err}");
        assert!(
            err.to_string().contains("channel binding is impossible"),
            "{err}"
        );
        let unknown = cert_with_algorithm(&[0x06, 0x03, 0x2a, 0x03, 0x04]);
        let err = tls_server_end_point(&unknown).unwrap_err();
        assert!(err.to_string().contains("1.2.3.4"), "{err}");
    }

    #[test]
    fn malformed_inputs() {
        let good = cert_with_algorithm(&SHA256_RSA);
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x30],
            vec![0x30, 0x80, 0x00, 0x00],
            vec![0x30, 0x85, 1, 1, 1, 1, 1],
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            vec![0x31, 0x00],
            vec![0x30, 0x00],
            [&good[..], &[0x00]].concat(),
            good[..good.len() - 1].to_vec(),
        ];
        for case in cases {
            assert!(
                matches!(
                    tls_server_end_point(&case),
                    Err(AuthError::MalformedCertificate { .. })
                ),
                "{case:x?}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = tls_server_end_point(&bytes);
        }

        #[test]
        fn mutated_certificate_never_panics(
            index in 0usize..64,
            value in any::<u8>(),
            cut in 0usize..80,
        ) {
            let mut cert = cert_with_algorithm(&[&SHA256_RSA[..], &[0x05, 0x00]].concat());
            let at = index % cert.len();
            if let Some(b) = cert.get_mut(at) {
                *b = value;
            }
            cert.truncate(cert.len().saturating_sub(cut % 8));
            let _ = tls_server_end_point(&cert);
        }
    }
}
