//! rustls client configuration for each `SslMode`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgcdc_core::SslMode;
use pgcdc_core::source_config::SSL_ROOT_CERT_SYSTEM;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::Error;

/// The ALPN protocol id PostgreSQL 17+ expects (optional with SSLRequest negotiation).
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The crypto provider used for every connection (ring).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Fills `buf` with cryptographically secure random bytes.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), Error> {
    provider()
        .secure_random
        .fill(buf)
        .map_err(|_| Error::Tls("the system random number generator failed".into()))
}

/// Where trusted root certificates come from (libpq's `sslrootcert`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootCerts {
    /// None configured: `prefer` and `require` do not check the certificate, and `verify-ca`
    /// and `verify-full` fail with a configuration error, as in libpq.
    #[default]
    NotSet,
    /// The operating system's certificate store (`sslrootcert=system`). Any publicly trusted
    /// certificate chains to it, so the host name is always checked too: every mode but
    /// `disable` behaves as `verify-full` (as libpq 16 does).
    Platform,
    /// A PEM file holding one or more CA certificates. `verify-full` checks the chain and the
    /// host name; `verify-ca`, `require` and `prefer` check the chain (libpq: with a root file
    /// present, `require` behaves as `verify-ca`). As in libpq, `require` and `prefer` ignore
    /// a file that does not exist (with a warning); the verify modes fail.
    File(PathBuf),
}

impl RootCerts {
    /// The roots an `ssl_root_cert` setting names: unset, `"system"`, or a PEM file.
    pub fn from_setting(setting: Option<&Path>) -> Self {
        match setting {
            None => RootCerts::NotSet,
            Some(p) if p.as_os_str() == SSL_ROOT_CERT_SYSTEM => RootCerts::Platform,
            Some(p) => RootCerts::File(p.to_path_buf()),
        }
    }

    /// The mode actually used: the platform's roots turn every mode that attempts TLS into
    /// `verify-full`.
    pub fn effective_mode(&self, mode: SslMode) -> SslMode {
        match self {
            RootCerts::Platform if mode.attempts_tls() => SslMode::VerifyFull,
            _ => mode,
        }
    }
}

fn load_roots(roots: &RootCerts) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::File(path) => {
            let certs = read_pem_certs(path)?;
            for c in certs {
                store.add(c).map_err(|e| {
                    Error::Config(format!(
                        "ssl_root_cert {}: a certificate could not be used as a trust anchor: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        RootCerts::Platform => {
            let loaded = rustls_native_certs::load_native_certs();
            for c in loaded.certs {
                let _ = store.add(c);
            }
        }
        RootCerts::NotSet => {}
    }
    if store.is_empty() {
        return Err(Error::Config(match roots {
            RootCerts::File(p) => format!(
                "ssl_root_cert {} holds no certificates: give a PEM file with the CA that signed the server certificate",
                p.display()
            ),
            RootCerts::Platform => "no trusted root certificates were found in the platform store (ssl_root_cert \"system\"): set ssl_root_cert to the CA file that signed the server certificate".into(),
            RootCerts::NotSet => "no root certificates are configured: set ssl_root_cert (the URL's sslrootcert) to the CA file that signed the server certificate, or to \"system\"".into(),
        }));
    }
    Ok(store)
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| {
        Error::Config(format!(
            "ssl_root_cert {}: cannot read the file: {e}",
            path.display()
        ))
    })?;
    iter.collect::<Result<Vec<_>, _>>().map_err(|e| {
        Error::Config(format!(
            "ssl_root_cert {}: not a valid PEM certificate file: {e}",
            path.display()
        ))
    })
}

/// How the server certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Chain and host name.
    Full,
    /// Chain only.
    Chain,
    /// Neither (only the handshake signature).
    None,
}

/// Builds the rustls configuration for `mode` (see [`RootCerts`] for the rules).
pub(crate) fn client_config(mode: SslMode, roots: &RootCerts) -> Result<Arc<ClientConfig>, Error> {
    let check = match (roots, mode) {
        (RootCerts::Platform, _) | (RootCerts::File(_), SslMode::VerifyFull) => Check::Full,
        (RootCerts::File(_), SslMode::VerifyCa) => Check::Chain,
        // As libpq: with `prefer` or `require`, a root file that does not exist is not used.
        (RootCerts::File(path), _) if !path.exists() => {
            tracing::warn!(
                path = %path.display(),
                "ssl_root_cert does not exist; the server certificate is not checked"
            );
            Check::None
        }
        (RootCerts::File(_), _) => Check::Chain,
        (RootCerts::NotSet, SslMode::VerifyCa | SslMode::VerifyFull) => {
            return Err(Error::Config(format!(
                "ssl_mode {mode} verifies the server certificate, but no root certificates are \
                 configured: set ssl_root_cert (the URL's sslrootcert) to the PEM file of the CA \
                 that signed the server certificate, or to \"system\" for the platform's trusted \
                 roots (which also checks the host name, as verify-full)"
            )));
        }
        (RootCerts::NotSet, _) => Check::None,
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut config = match check {
        Check::Full | Check::Chain => {
            let store = Arc::new(load_roots(roots)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
                .build()
                .map_err(|e| Error::Tls(e.to_string()))?;
            if check == Check::Full {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { inner: webpki }))
                    .with_no_client_auth()
            }
        }
        Check::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertCheck {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(Arc::new(config))
}

/// The name the certificate is checked against.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned()).map_err(|_| {
        Error::Config(format!(
            "host {host:?} is not a valid DNS name or IP address for TLS"
        ))
    })
}

/// `verify-ca` (and `require`/`prefer` with a root file): the chain must lead to a trusted
/// root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // The name is checked only after the chain verified, so a name mismatch means
            // the chain itself is trusted.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `require` / `prefer` with no root file: encryption without certificate checks (libpq's
/// meaning). The
/// handshake signature is still verified, so the peer holds the certificate's key.
#[derive(Debug)]
struct NoCertCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
