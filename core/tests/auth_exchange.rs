//! The `Authenticator` driven through whole exchanges against a test-side SCRAM server.

/// Named `auth` so that `cargo test -p pgcdc-core auth` selects these tests.
mod auth {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use bytes::{Bytes, BytesMut};
    use hmac::{Hmac, Mac};
    use pgcdc_core::auth::{
        AuthError, AuthStatus, Authenticator, TlsInfo, saslprep, tls_server_end_point,
    };
    use pgcdc_core::wire::Authentication;
    use pgcdc_core::{ChannelBinding, Password};
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    const RSA_SHA256: &[u8] = include_bytes!("data/rsa2048_sha256.der");
    const ED25519: &[u8] = include_bytes!("data/ed25519.der");
    const SECRET: &str = "hunter2-correct-horse";
    const NONCE: [u8; 18] = [0x5a; 18];

    // ---------------------------------------------------------------------------------------------
    // Decoding what the client sent.

    /// Splits one `'p'` message off `out` and returns its body.
    fn take_p(out: &mut BytesMut) -> Vec<u8> {
        assert_eq!(out[0], b'p', "not a 'p' message: {out:?}");
        let len = i32::from_be_bytes(out[1..5].try_into().unwrap()) as usize;
        let msg = out.split_to(1 + len);
        msg[5..].to_vec()
    }

    /// Decodes a SASLInitialResponse body into (mechanism, data).
    fn sasl_initial(body: &[u8]) -> (String, Vec<u8>) {
        let nul = body.iter().position(|&b| b == 0).unwrap();
        let mechanism = String::from_utf8(body[..nul].to_vec()).unwrap();
        let rest = &body[nul + 1..];
        let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(rest.len(), 4 + len);
        (mechanism, rest[4..].to_vec())
    }

    // ---------------------------------------------------------------------------------------------
    // A minimal SCRAM-SHA-256 server, written from RFC 5802 independently of the client.

    fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    struct TestServer {
        stored_key: [u8; 32],
        server_key: [u8; 32],
        salt: Vec<u8>,
        iterations: u32,
        server_nonce: String,
        /// The channel-binding data the server expects with `p=tls-server-end-point`.
        end_point: Option<Vec<u8>>,
        client_first_bare: String,
        gs2_header: String,
        server_first: String,
        full_nonce: String,
    }

    impl TestServer {
        fn new(password: &str, end_point: Option<Vec<u8>>) -> Self {
            // PostgreSQL stores the secret from the SASLprep'ed password.
            let prepped = saslprep(password.as_bytes()).into_owned();
            let salt = b"0123456789abcdef".to_vec();
            let iterations = 4096;
            let mut salted = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(&prepped, &salt, iterations, &mut salted);
            let client_key = hmac(&salted, b"Client Key");
            TestServer {
                stored_key: Sha256::digest(client_key).into(),
                server_key: hmac(&salted, b"Server Key"),
                salt,
                iterations,
                server_nonce: "SeRvErNoNcE+/0123456789ab".into(),
                end_point,
                client_first_bare: String::new(),
                gs2_header: String::new(),
                server_first: String::new(),
                full_nonce: String::new(),
            }
        }

        /// Handles the client-first-message, returns the server-first-message.
        fn first(&mut self, client_first: &[u8]) -> Vec<u8> {
            let text = std::str::from_utf8(client_first).unwrap();
            let (gs2, bare) = if let Some(bare) = text.strip_prefix("p=tls-server-end-point,,") {
                ("p=tls-server-end-point,,", bare)
            } else if let Some(bare) = text.strip_prefix("n,,") {
                ("n,,", bare)
            } else if let Some(bare) = text.strip_prefix("y,,") {
                ("y,,", bare)
            } else {
                panic!("bad gs2 header in {text}");
            };
            let client_nonce = bare
                .strip_prefix("n=,r=")
                .expect("libpq-style bare message");
            assert_eq!(client_nonce.len(), 24);
            self.gs2_header = gs2.into();
            self.client_first_bare = bare.into();
            self.full_nonce = format!("{client_nonce}{}", self.server_nonce);
            self.server_first = format!(
                "r={},s={},i={}",
                self.full_nonce,
                BASE64.encode(&self.salt),
                self.iterations
            );
            self.server_first.clone().into_bytes()
        }

        /// Checks the client-final-message; returns the server-final-message or the reason the
        /// real server would answer with FATAL 28P01/28000.
        fn finish(&self, client_final: &[u8]) -> Result<Vec<u8>, &'static str> {
            let text = std::str::from_utf8(client_final).unwrap();
            let (without_proof, proof) = text.rsplit_once(",p=").ok_or("no proof")?;
            let (c, r) = without_proof.split_once(",r=").ok_or("no nonce")?;
            let cbind = BASE64
                .decode(c.strip_prefix("c=").ok_or("no c=")?)
                .map_err(|_| "c=")?;
            let mut expected = self.gs2_header.as_bytes().to_vec();
            if self.gs2_header.starts_with("p=") {
                expected.extend(
                    self.end_point
                        .as_ref()
                        .ok_or("unexpected channel binding")?,
                );
            }
            if cbind != expected {
                return Err("channel binding mismatch");
            }
            if r != self.full_nonce {
                return Err("nonce mismatch");
            }
            let auth_message = format!(
                "{},{},{}",
                self.client_first_bare, self.server_first, without_proof
            );
            let client_signature = hmac(&self.stored_key, auth_message.as_bytes());
            let proof = BASE64.decode(proof).map_err(|_| "proof base64")?;
            if proof.len() != 32 {
                return Err("proof length");
            }
            let client_key: Vec<u8> = proof
                .iter()
                .zip(client_signature)
                .map(|(p, s)| p ^ s)
                .collect();
            if <[u8; 32]>::from(Sha256::digest(&client_key)) != self.stored_key {
                return Err("password authentication failed");
            }
            let server_signature = hmac(&self.server_key, auth_message.as_bytes());
            Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
        }
    }

    fn sasl(mechanisms: &[&str]) -> Authentication {
        Authentication::Sasl {
            mechanisms: mechanisms.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn plus_offer() -> Authentication {
        sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])
    }

    /// Result of a full run against the test server.
    struct Run {
        mechanism: String,
        client_first: Vec<u8>,
        client_final: Vec<u8>,
        auth: Authenticator,
    }

    /// Runs a complete SCRAM exchange and returns what the client sent.
    fn run_exchange(
        client_password: &str,
        server_password: &str,
        channel_binding: ChannelBinding,
        tls: TlsInfo,
        offer: Authentication,
        server_end_point: Option<Vec<u8>>,
    ) -> Run {
        let mut auth = Authenticator::new(
            Some(Password::from(client_password)),
            channel_binding,
            tls,
            NONCE,
        );
        let mut server = TestServer::new(server_password, server_end_point);
        let mut out = BytesMut::new();

        assert_eq!(
            auth.handle(&offer, &mut out).unwrap(),
            AuthStatus::InProgress
        );
        let (mechanism, client_first) = sasl_initial(&take_p(&mut out));
        assert!(out.is_empty());

        let server_first = server.first(&client_first);
        let status = auth
            .handle(
                &Authentication::SaslContinue(Bytes::from(server_first)),
                &mut out,
            )
            .unwrap();
        assert_eq!(status, AuthStatus::InProgress);
        let client_final = take_p(&mut out);
        assert!(out.is_empty());

        let server_final = server
            .finish(&client_final)
            .expect("server accepts the client");
        let status = auth
            .handle(
                &Authentication::SaslFinal(Bytes::from(server_final)),
                &mut out,
            )
            .unwrap();
        assert_eq!(status, AuthStatus::InProgress);
        assert!(out.is_empty());
        assert!(!auth.is_done());
        assert_eq!(
            auth.handle(&Authentication::Ok, &mut out).unwrap(),
            AuthStatus::Done
        );
        assert!(auth.is_done());
        assert!(out.is_empty());
        Run {
            mechanism,
            client_first,
            client_final,
            auth,
        }
    }

    fn c_attr(client_final: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(client_final).unwrap();
        let c = text.split(',').next().unwrap().strip_prefix("c=").unwrap();
        BASE64.decode(c).unwrap()
    }

    // ---------------------------------------------------------------------------------------------
    // Successful exchanges.

    #[test]
    fn scram_over_plaintext() {
        let run = run_exchange(
            SECRET,
            SECRET,
            ChannelBinding::Prefer,
            TlsInfo::Plaintext,
            sasl(&["SCRAM-SHA-256"]),
            None,
        );
        assert_eq!(run.mechanism, "SCRAM-SHA-256");
        assert!(run.client_first.starts_with(b"n,,n=,r="));
        assert!(run.client_final.starts_with(b"c=biws,"));
        assert!(!run.auth.used_channel_binding());
    }

    #[test]
    fn scram_plus_over_tls_binds_the_certificate_hash() {
        let end_point = tls_server_end_point(RSA_SHA256).unwrap();
        let run = run_exchange(
            SECRET,
            SECRET,
            ChannelBinding::Require,
            TlsInfo::from_server_certificate(RSA_SHA256),
            plus_offer(),
            Some(end_point.clone()),
        );
        assert_eq!(run.mechanism, "SCRAM-SHA-256-PLUS");
        assert!(
            run.client_first
                .starts_with(b"p=tls-server-end-point,,n=,r=")
        );
        let mut expected = b"p=tls-server-end-point,,".to_vec();
        expected.extend_from_slice(&Sha256::digest(RSA_SHA256));
        assert_eq!(c_attr(&run.client_final), expected);
        assert_eq!(&expected[24..], &end_point[..]);
        assert!(run.auth.used_channel_binding());
    }

    #[test]
    fn prefer_uses_plus_when_offered_over_tls() {
        let end_point = tls_server_end_point(RSA_SHA256).unwrap();
        let run = run_exchange(
            SECRET,
            SECRET,
            ChannelBinding::Prefer,
            TlsInfo::Tls {
                server_end_point: Some(end_point.clone()),
            },
            plus_offer(),
            Some(end_point),
        );
        assert_eq!(run.mechanism, "SCRAM-SHA-256-PLUS");
    }

    #[test]
    fn disable_uses_plain_scram_even_when_plus_is_offered() {
        let run = run_exchange(
            SECRET,
            SECRET,
            ChannelBinding::Disable,
            TlsInfo::from_server_certificate(RSA_SHA256),
            plus_offer(),
            None,
        );
        assert_eq!(run.mechanism, "SCRAM-SHA-256");
        assert_eq!(c_attr(&run.client_final), b"n,,");
    }

    #[test]
    fn prefer_with_an_ed25519_certificate_falls_back_to_n() {
        let tls = TlsInfo::from_server_certificate(ED25519);
        assert_eq!(
            tls,
            TlsInfo::Tls {
                server_end_point: None
            }
        );
        let run = run_exchange(
            SECRET,
            SECRET,
            ChannelBinding::Prefer,
            tls,
            plus_offer(),
            None,
        );
        assert_eq!(run.mechanism, "SCRAM-SHA-256");
        // Never `y,,` over TLS: PostgreSQL would reject it.
        assert_eq!(c_attr(&run.client_final), b"n,,");
    }

    #[test]
    fn tls_without_plus_offer_sends_y_like_libpq() {
        // A TLS server that does not offer PLUS (PostgreSQL always does, so this is a proxy
        // such as PgBouncer, or a downgrade attempt the real server will detect from `y`).
        let run = run_exchange(
            SECRET,
            SECRET,
            ChannelBinding::Prefer,
            TlsInfo::from_server_certificate(RSA_SHA256),
            sasl(&["SCRAM-SHA-256"]),
            None,
        );
        assert_eq!(run.mechanism, "SCRAM-SHA-256");
        assert!(run.client_first.starts_with(b"y,,n=,r="));
        assert!(run.client_final.starts_with(b"c=eSws,"));
        assert!(!run.auth.used_channel_binding());
    }

    #[test]
    fn disable_over_tls_without_plus_offer_sends_n() {
        let run = run_exchange(
            SECRET,
            SECRET,
            ChannelBinding::Disable,
            TlsInfo::from_server_certificate(RSA_SHA256),
            sasl(&["SCRAM-SHA-256"]),
            None,
        );
        assert_eq!(c_attr(&run.client_final), b"n,,");
    }

    #[test]
    fn saslprep_applies_to_the_password() {
        // The server stored "IX"; the client was given "I<soft hyphen>X".
        run_exchange(
            "I\u{AD}X",
            "IX",
            ChannelBinding::Prefer,
            TlsInfo::Plaintext,
            sasl(&["SCRAM-SHA-256"]),
            None,
        );
    }

    #[test]
    fn wrong_password_is_rejected_by_the_test_server() {
        let mut auth = Authenticator::new(
            Some(Password::from("wrong")),
            ChannelBinding::Prefer,
            TlsInfo::Plaintext,
            NONCE,
        );
        let mut server = TestServer::new(SECRET, None);
        let mut out = BytesMut::new();
        auth.handle(&sasl(&["SCRAM-SHA-256"]), &mut out).unwrap();
        let (_, first) = sasl_initial(&take_p(&mut out));
        let server_first = server.first(&first);
        auth.handle(&Authentication::SaslContinue(server_first.into()), &mut out)
            .unwrap();
        assert_eq!(
            server.finish(&take_p(&mut out)),
            Err("password authentication failed")
        );
    }

    #[test]
    fn trust_completes_immediately() {
        let mut auth = Authenticator::new(None, ChannelBinding::Prefer, TlsInfo::Plaintext, NONCE);
        let mut out = BytesMut::new();
        assert_eq!(
            auth.handle(&Authentication::Ok, &mut out).unwrap(),
            AuthStatus::Done
        );
        assert!(out.is_empty());
    }

    #[test]
    fn cleartext_over_plaintext_is_refused_by_default() {
        let mut auth = Authenticator::new(
            Some(Password::from(SECRET)),
            ChannelBinding::Prefer,
            TlsInfo::Plaintext,
            NONCE,
        );
        let mut out = BytesMut::new();
        let err = auth
            .handle(&Authentication::CleartextPassword, &mut out)
            .unwrap_err();
        assert!(out.is_empty(), "the password must not be sent");
        let text = err.to_string();
        assert!(text.contains("require_auth=password"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }

    #[test]
    fn require_auth_is_enforced_on_each_request() {
        use pgcdc_core::auth::RequireAuth;
        let with = |ra: &str, tls: TlsInfo| {
            Authenticator::new(
                Some(Password::from(SECRET)),
                ChannelBinding::Prefer,
                tls,
                NONCE,
            )
            .require_auth(ra.parse::<RequireAuth>().unwrap())
        };
        let tls = || TlsInfo::from_server_certificate(RSA_SHA256);
        // Explicitly allowed: the cleartext password goes out even without TLS.
        let mut out = BytesMut::new();
        let mut auth = with("password", TlsInfo::Plaintext);
        assert_eq!(
            auth.handle(&Authentication::CleartextPassword, &mut out)
                .unwrap(),
            AuthStatus::InProgress
        );
        assert_eq!(take_p(&mut out), format!("{SECRET}\0").into_bytes());
        assert_eq!(
            auth.handle(&Authentication::Ok, &mut out).unwrap(),
            AuthStatus::Done
        );
        // Refused methods, each with the method and the setting in the error.
        for (ra, msg, method) in [
            (
                "scram-sha-256",
                Authentication::CleartextPassword,
                "password",
            ),
            ("!password", Authentication::CleartextPassword, "password"),
            ("scram-sha-256", Authentication::Ok, "none"),
            ("password", sasl(&["SCRAM-SHA-256"]), "scram-sha-256"),
            (
                "!scram-sha-256,!none",
                sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
                "scram-sha-256",
            ),
            (
                "none",
                Authentication::Md5Password { salt: [1, 2, 3, 4] },
                "md5",
            ),
        ] {
            let mut out = BytesMut::new();
            let err = with(ra, tls()).handle(&msg, &mut out).unwrap_err();
            assert!(
                matches!(&err, AuthError::MethodNotAllowed { method: m, require_auth } if *m == method && require_auth == ra),
                "{ra} {msg:?}: {err}"
            );
            assert!(out.is_empty(), "nothing is sent for a refused method");
        }
        // Allowed ones proceed.
        let mut out = BytesMut::new();
        assert_eq!(
            with("scram-sha-256", tls())
                .handle(&sasl(&["SCRAM-SHA-256"]), &mut out)
                .unwrap(),
            AuthStatus::InProgress
        );
        assert_eq!(
            with("none", tls())
                .handle(&Authentication::Ok, &mut out)
                .unwrap(),
            AuthStatus::Done
        );
        // `!md5` is an explicit choice that allows password, so cleartext without TLS is sent.
        let mut out = BytesMut::new();
        assert_eq!(
            with("!md5", TlsInfo::Plaintext)
                .handle(&Authentication::CleartextPassword, &mut out)
                .unwrap(),
            AuthStatus::InProgress
        );
    }

    #[test]
    fn cleartext_sends_the_password() {
        let mut auth = Authenticator::new(
            Some(Password::from(SECRET)),
            ChannelBinding::Prefer,
            TlsInfo::from_server_certificate(RSA_SHA256),
            NONCE,
        );
        let mut out = BytesMut::new();
        assert_eq!(
            auth.handle(&Authentication::CleartextPassword, &mut out)
                .unwrap(),
            AuthStatus::InProgress
        );
        let body = take_p(&mut out);
        assert_eq!(body, format!("{SECRET}\0").into_bytes());
        assert_eq!(
            auth.handle(&Authentication::Ok, &mut out).unwrap(),
            AuthStatus::Done
        );
    }

    // ---------------------------------------------------------------------------------------------
    // Refusals.

    fn new_auth(channel_binding: ChannelBinding, tls: TlsInfo) -> Authenticator {
        Authenticator::new(Some(Password::from(SECRET)), channel_binding, tls, NONCE)
    }

    /// Drives SASL and SASLContinue through a real server, returning the server for the final.
    fn up_to_final(auth: &mut Authenticator) -> (TestServer, Vec<u8>) {
        let mut server = TestServer::new(SECRET, None);
        let mut out = BytesMut::new();
        auth.handle(&sasl(&["SCRAM-SHA-256"]), &mut out).unwrap();
        let (_, first) = sasl_initial(&take_p(&mut out));
        let server_first = server.first(&first);
        auth.handle(&Authentication::SaslContinue(server_first.into()), &mut out)
            .unwrap();
        let client_final = take_p(&mut out);
        (server, client_final)
    }

    #[test]
    fn wrong_server_signature_is_an_error() {
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        let (server, client_final) = up_to_final(&mut auth);
        let good = server.finish(&client_final).unwrap();
        let mut bad = BASE64.decode(&good[2..]).unwrap();
        bad[0] ^= 1;
        let bad = format!("v={}", BASE64.encode(bad));
        let mut out = BytesMut::new();
        let err = auth
            .handle(&Authentication::SaslFinal(bad.into()), &mut out)
            .unwrap_err();
        assert_eq!(err, AuthError::ServerSignatureMismatch);
        // The exchange is over; a following Ok does not rescue it.
        assert_eq!(
            auth.handle(&Authentication::Ok, &mut out).unwrap_err(),
            AuthError::Failed
        );
        assert!(!auth.is_done());
    }

    #[test]
    fn server_error_in_final_is_reported() {
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        up_to_final(&mut auth);
        let err = auth
            .handle(
                &Authentication::SaslFinal(Bytes::from_static(b"e=invalid-proof")),
                &mut BytesMut::new(),
            )
            .unwrap_err();
        assert!(
            matches!(err, AuthError::ServerRejected { ref message } if message == "invalid-proof")
        );
    }

    #[test]
    fn ok_before_sasl_final_is_an_error() {
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        up_to_final(&mut auth);
        let err = auth
            .handle(&Authentication::Ok, &mut BytesMut::new())
            .unwrap_err();
        assert_eq!(err, AuthError::SaslIncomplete);

        // Also straight after the SASL offer.
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        let mut out = BytesMut::new();
        auth.handle(&sasl(&["SCRAM-SHA-256"]), &mut out).unwrap();
        assert_eq!(
            auth.handle(&Authentication::Ok, &mut out).unwrap_err(),
            AuthError::SaslIncomplete
        );
    }

    #[test]
    fn md5_is_refused_with_instructions() {
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        let mut out = BytesMut::new();
        let err = auth
            .handle(
                &Authentication::Md5Password { salt: [1, 2, 3, 4] },
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err, AuthError::Md5Refused);
        let text = err.to_string();
        for needle in ["MD5", "pg_hba.conf", "scram-sha-256", "password_encryption"] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert!(out.is_empty(), "nothing is sent for MD5");
    }

    #[test]
    fn other_methods_are_named() {
        for (code, name) in [
            (2, "Kerberos"),
            (6, "SCM"),
            (7, "GSSAPI"),
            (8, "GSSAPI"),
            (9, "SSPI"),
            (42, "unknown"),
        ] {
            let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
            let err = auth
                .handle(&Authentication::Other(code), &mut BytesMut::new())
                .unwrap_err();
            let text = err.to_string();
            assert!(text.contains(name), "{text}");
            assert!(text.contains("pg_hba.conf"), "{text}");
            assert!(text.contains(&format!("code {code}")), "{text}");
        }
    }

    #[test]
    fn require_without_tls_is_an_error() {
        let mut auth = new_auth(ChannelBinding::Require, TlsInfo::Plaintext);
        let mut out = BytesMut::new();
        let err = auth.handle(&plus_offer(), &mut out).unwrap_err();
        assert!(matches!(err, AuthError::ChannelBindingRequired { .. }));
        assert!(err.to_string().contains("sslmode"), "{err}");
        assert!(out.is_empty());
    }

    #[test]
    fn require_refuses_authentication_without_sasl() {
        let mut auth = new_auth(
            ChannelBinding::Require,
            TlsInfo::from_server_certificate(RSA_SHA256),
        );
        let err = auth
            .handle(&Authentication::Ok, &mut BytesMut::new())
            .unwrap_err();
        assert!(matches!(err, AuthError::ChannelBindingRequired { .. }));
        assert!(!auth.is_done());
    }

    #[test]
    fn require_refuses_cleartext() {
        let mut auth = new_auth(
            ChannelBinding::Require,
            TlsInfo::from_server_certificate(RSA_SHA256),
        );
        let mut out = BytesMut::new();
        let err = auth
            .handle(&Authentication::CleartextPassword, &mut out)
            .unwrap_err();
        assert!(matches!(err, AuthError::ChannelBindingRequired { .. }));
        assert!(out.is_empty(), "the password must not be sent");
    }

    #[test]
    fn require_without_plus_offer_is_an_error() {
        let mut auth = new_auth(
            ChannelBinding::Require,
            TlsInfo::from_server_certificate(RSA_SHA256),
        );
        let err = auth
            .handle(&sasl(&["SCRAM-SHA-256"]), &mut BytesMut::new())
            .unwrap_err();
        assert!(err.to_string().contains("SCRAM-SHA-256-PLUS"), "{err}");
    }

    #[test]
    fn require_with_ed25519_certificate_is_an_error() {
        let mut auth = new_auth(
            ChannelBinding::Require,
            TlsInfo::from_server_certificate(ED25519),
        );
        let err = auth
            .handle(&plus_offer(), &mut BytesMut::new())
            .unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
    }

    #[test]
    fn no_scram_mechanism_lists_the_offer() {
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        let err = auth
            .handle(&sasl(&["OAUTHBEARER"]), &mut BytesMut::new())
            .unwrap_err();
        assert_eq!(
            err,
            AuthError::NoSupportedMechanism {
                offered: vec!["OAUTHBEARER".into()]
            }
        );
        assert!(err.to_string().contains("OAUTHBEARER"));

        // Only PLUS offered on a plaintext connection: nothing usable either.
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        assert!(matches!(
            auth.handle(&sasl(&["SCRAM-SHA-256-PLUS"]), &mut BytesMut::new()),
            Err(AuthError::NoSupportedMechanism { .. })
        ));
    }

    #[test]
    fn missing_password() {
        for msg in [Authentication::CleartextPassword, sasl(&["SCRAM-SHA-256"])] {
            let mut auth = Authenticator::new(
                None,
                ChannelBinding::Prefer,
                TlsInfo::from_server_certificate(RSA_SHA256),
                NONCE,
            );
            let err = auth.handle(&msg, &mut BytesMut::new()).unwrap_err();
            assert!(matches!(err, AuthError::NoPassword { .. }), "{err:?}");
        }
    }

    #[test]
    fn messages_in_the_wrong_order() {
        let continue_msg = Authentication::SaslContinue(Bytes::from_static(b"r=x,s=AAAA,i=1"));
        let final_msg = Authentication::SaslFinal(Bytes::from_static(b"v=AAAA"));
        for msg in [&continue_msg, &final_msg] {
            let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
            assert!(matches!(
                auth.handle(msg, &mut BytesMut::new()),
                Err(AuthError::UnexpectedMessage { .. })
            ));
        }
        // SASLFinal before SASLContinue.
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        auth.handle(&sasl(&["SCRAM-SHA-256"]), &mut BytesMut::new())
            .unwrap();
        assert!(matches!(
            auth.handle(&final_msg, &mut BytesMut::new()),
            Err(AuthError::UnexpectedMessage { .. })
        ));
        // A second SASL offer.
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        auth.handle(&sasl(&["SCRAM-SHA-256"]), &mut BytesMut::new())
            .unwrap();
        assert!(matches!(
            auth.handle(&sasl(&["SCRAM-SHA-256"]), &mut BytesMut::new()),
            Err(AuthError::UnexpectedMessage { .. })
        ));
        // Anything after Done.
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        auth.handle(&Authentication::Ok, &mut BytesMut::new())
            .unwrap();
        assert!(matches!(
            auth.handle(&Authentication::Ok, &mut BytesMut::new()),
            Err(AuthError::UnexpectedMessage { .. })
        ));
    }

    #[test]
    fn the_password_never_appears_in_errors_or_debug() {
        let mut errors = Vec::new();
        let messages = [
            Authentication::Md5Password { salt: [0; 4] },
            Authentication::Other(7),
            Authentication::Ok,
            sasl(&["OAUTHBEARER"]),
            Authentication::SaslContinue(Bytes::from_static(b"garbage")),
        ];
        for msg in &messages {
            let mut auth = new_auth(ChannelBinding::Require, TlsInfo::Plaintext);
            if let Err(e) = auth.handle(msg, &mut BytesMut::new()) {
                errors.push(format!("{e} {e:?} {auth:?}"));
            }
        }
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        let (_, _) = up_to_final(&mut auth);
        errors.push(format!("{auth:?}"));
        if let Err(e) = auth.handle(
            &Authentication::SaslFinal(Bytes::from_static(b"v=AAAA")),
            &mut BytesMut::new(),
        ) {
            errors.push(format!("{e} {e:?} {auth:?}"));
        }
        assert!(errors.len() >= 6);
        for text in errors {
            assert!(!text.contains(SECRET), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn every_error_tells_the_operator_something_to_do() {
        let mut auth = new_auth(ChannelBinding::Prefer, TlsInfo::Plaintext);
        up_to_final(&mut auth);
        let err = auth
            .handle(&Authentication::Ok, &mut BytesMut::new())
            .unwrap_err();
        assert!(err.to_string().contains("check"), "{err}");
    }

    // ---------------------------------------------------------------------------------------------
    // Fuzz-style: arbitrary message sequences never panic and never end in a silent success
    // without a verified SCRAM exchange when SCRAM was started.

    fn arb_message() -> impl Strategy<Value = Authentication> {
        prop_oneof![
            Just(Authentication::Ok),
            Just(Authentication::CleartextPassword),
            any::<[u8; 4]>().prop_map(|salt| Authentication::Md5Password { salt }),
            proptest::collection::vec(
                prop_oneof![
                    Just("SCRAM-SHA-256".to_string()),
                    Just("SCRAM-SHA-256-PLUS".to_string()),
                    "[A-Z-]{0,12}"
                ],
                0..4
            )
            .prop_map(|mechanisms| Authentication::Sasl { mechanisms }),
            proptest::collection::vec(any::<u8>(), 0..80)
                .prop_map(|b| Authentication::SaslContinue(b.into())),
            "r=[A-Za-z0-9+/]{24,30},s=[A-Za-z0-9+/]{4}(==)?,i=[0-9]{1,2}"
                .prop_map(|s| Authentication::SaslContinue(s.into_bytes().into())),
            proptest::collection::vec(any::<u8>(), 0..80)
                .prop_map(|b| Authentication::SaslFinal(b.into())),
            any::<i32>().prop_map(Authentication::Other),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_sequences_never_panic(
            messages in proptest::collection::vec(arb_message(), 0..8),
            require in any::<bool>(),
            tls in any::<bool>(),
        ) {
            let channel_binding = if require { ChannelBinding::Require } else { ChannelBinding::Prefer };
            let tls = if tls { TlsInfo::from_server_certificate(RSA_SHA256) } else { TlsInfo::Plaintext };
            let mut auth = new_auth(channel_binding, tls);
            let mut out = BytesMut::new();
            let mut saw_sasl = false;
            for msg in &messages {
                if matches!(msg, Authentication::Sasl { .. }) {
                    saw_sasl = true;
                }
                match auth.handle(msg, &mut out) {
                    Ok(AuthStatus::Done) => {
                        // A SCRAM exchange with garbage server messages can never verify.
                        prop_assert!(!saw_sasl);
                        prop_assert!(!require);
                    }
                    Ok(_) => {}
                    Err(_) => {}
                }
            }
        }
    }
}
