//! `tls_server_end_point` against real certificates generated with OpenSSL 3.0.
//!
//! Expected values come from `openssl dgst -sha256|-sha384|-sha512 <file>.der`.

/// Named `auth` so that `cargo test -p pgcdc-core auth` selects these tests.
mod auth {
    use pgcdc_core::auth::{AuthError, tls_server_end_point};
    use proptest::prelude::*;

    const RSA_SHA256: &[u8] = include_bytes!("data/rsa2048_sha256.der");
    const RSA_SHA1: &[u8] = include_bytes!("data/rsa2048_sha1.der");
    const EC_P384_SHA384: &[u8] = include_bytes!("data/ec_p384_sha384.der");
    const RSA_PSS_SHA512: &[u8] = include_bytes!("data/rsa_pss_sha512.der");
    const RSA_PSS_SHA1: &[u8] = include_bytes!("data/rsa_pss_sha1.der");
    const ED25519: &[u8] = include_bytes!("data/ed25519.der");

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rsa_sha256_certificate_uses_sha256() {
        // openssl x509 -in c.pem -outform der | openssl dgst -sha256
        assert_eq!(
            hex(&tls_server_end_point(RSA_SHA256).unwrap()),
            "5910d766042ea6499cd8731f04de50790c63fd685ea3d3d22a3abed86877fc12"
        );
    }

    #[test]
    fn rsa_sha1_certificate_uses_sha256() {
        assert_eq!(
            hex(&tls_server_end_point(RSA_SHA1).unwrap()),
            "6ef5df12deb425f3a875f074e5b7bb06066552439ca3e132f6b7628a0bc110bc"
        );
    }

    #[test]
    fn ecdsa_p384_sha384_certificate_uses_sha384() {
        let hash = tls_server_end_point(EC_P384_SHA384).unwrap();
        assert_eq!(hash.len(), 48);
        assert_eq!(
            hex(&hash),
            "ce3da67779a260d422f35276b02138141154cdcb9de1a63ca09fb953a6fcb590\
         e5309c0edd8f0e827cd8ec8ab86c6ed4"
        );
    }

    #[test]
    fn rsa_pss_sha512_certificate_uses_the_parameter_hash() {
        let hash = tls_server_end_point(RSA_PSS_SHA512).unwrap();
        assert_eq!(hash.len(), 64);
        assert_eq!(
            hex(&hash),
            "45cb1ad019da3ecfb53a1058d61d841ccc27e3177ee95556003ced479140054e\
         61eed4fcb23f47f1475d1e30f27cabc307115f49769308b5397cbf6e2b3e68f1"
        );
    }

    #[test]
    fn rsa_pss_default_sha1_certificate_uses_sha256() {
        assert_eq!(
            hex(&tls_server_end_point(RSA_PSS_SHA1).unwrap()),
            "373e3bd5565462aaa090b6ff5ddae2335ce3a79ae127f16bebb8aa7c02da8266"
        );
    }

    #[test]
    fn ed25519_certificate_makes_channel_binding_impossible() {
        let err = tls_server_end_point(ED25519).unwrap_err();
        assert!(
            matches!(err, AuthError::ChannelBindingImpossible { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("channel binding is impossible"), "{text}");
        assert!(text.contains("Ed25519"), "{text}");
    }

    #[test]
    fn every_truncation_of_a_real_certificate_is_an_error() {
        for cert in [RSA_SHA256, EC_P384_SHA384, RSA_PSS_SHA512] {
            for len in 0..cert.len() {
                assert!(tls_server_end_point(&cert[..len]).is_err(), "prefix {len}");
            }
        }
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        let mut cert = RSA_SHA256.to_vec();
        cert.push(0);
        assert!(matches!(
            tls_server_end_point(&cert),
            Err(AuthError::MalformedCertificate { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = tls_server_end_point(&bytes);
        }

        #[test]
        fn corrupted_real_certificates_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        ) {
            let mut cert = [RSA_SHA256, EC_P384_SHA384, RSA_PSS_SHA512][which].to_vec();
            for (at, value) in edits {
                let at = at % cert.len();
                cert[at] = value;
            }
            let _ = tls_server_end_point(&cert);
        }
    }
}
