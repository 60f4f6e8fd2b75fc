//! Test certificates, made with the `openssl` command-line tool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::TestkitError;
use crate::sys::{clean_env, find_in_path, run, set_mode};

/// The CA certificate's file name.
pub(crate) const CA_CERT_FILE: &str = "ca.crt";
/// The server certificate's file name.
pub(crate) const SERVER_CERT_FILE: &str = "server.crt";

/// How long generated certificates are valid, in days.
const VALID_DAYS: &str = "30";

/// The certificates of a cluster.
#[derive(Debug, Clone)]
pub(crate) struct ServerTls {
    pub(crate) ca_cert: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
}

/// The path of the `openssl` tool, or a clear error.
pub(crate) fn find_openssl() -> Result<PathBuf, TestkitError> {
    find_in_path(std::env::var_os("PATH").as_deref(), "openssl").ok_or(TestkitError::ToolNotFound {
        tool: "openssl",
        hint: "it is needed to generate the test certificates: install it with \
               `apt-get install -y openssl`, or disable TLS with `Cluster::builder().tls(false)`",
    })
}

fn openssl_command(openssl: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(openssl);
    cmd.current_dir(dir);
    clean_env(&mut cmd);
    cmd.env_remove("OPENSSL_CONF");
    cmd
}

fn write(path: &Path, contents: &str) -> Result<(), TestkitError> {
    fs::write(path, contents).map_err(|e| TestkitError::io(format!("write {}", path.display()), e))
}

/// Writes a self-signed CA (`<stem>.crt`, `<stem>.key`) into `dir`; returns the paths.
fn generate_ca(
    openssl: &Path,
    dir: &Path,
    stem: &str,
    common_name: &str,
) -> Result<(PathBuf, PathBuf), TestkitError> {
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    let config = dir.join(format!("{stem}.cnf"));
    write(
        &config,
        &format!(
            "[req]\n\
             distinguished_name = dn\n\
             prompt = no\n\
             x509_extensions = v3_ca\n\
             [dn]\n\
             CN = {common_name}\n\
             [v3_ca]\n\
             basicConstraints = critical, CA:TRUE\n\
             keyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid:always\n"
        ),
    )?;
    let result = run(
        openssl_command(openssl, dir)
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256"])
            .args(["-days", VALID_DAYS, "-set_serial", &serial()])
            .arg("-config")
            .arg(&config)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        "openssl: generating a test CA",
    );
    let _ = fs::remove_file(&config);
    result?;
    set_mode(&key, 0o600)?;
    Ok((cert, key))
}

/// Generates the CA and a server certificate for `localhost` / `127.0.0.1` in `dir`.
pub(crate) fn generate_server_tls(openssl: &Path, dir: &Path) -> Result<ServerTls, TestkitError> {
    let (ca_cert, ca_key) = generate_ca(openssl, dir, "ca", "pgcdc test CA")?;
    let server_cert = dir.join(SERVER_CERT_FILE);
    let server_key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let req_config = dir.join("server-req.cnf");
    let ext_file = dir.join("server-ext.cnf");
    write(
        &req_config,
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n",
    )?;
    write(
        &ext_file,
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost, IP:127.0.0.1\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid, issuer\n",
    )?;
    let result = run(
        openssl_command(openssl, dir)
            .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256"])
            .arg("-config")
            .arg(&req_config)
            .arg("-keyout")
            .arg(&server_key)
            .arg("-out")
            .arg(&csr),
        "openssl: generating the server key",
    )
    .and_then(|_| {
        run(
            openssl_command(openssl, dir)
                .args(["x509", "-req", "-sha256", "-days", VALID_DAYS])
                .args(["-set_serial", &serial()])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_cert)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&ext_file)
                .arg("-out")
                .arg(&server_cert),
            "openssl: signing the server certificate",
        )
    });
    for temp in [&csr, &req_config, &ext_file] {
        let _ = fs::remove_file(temp);
    }
    result?;
    set_mode(&server_key, 0o600)?;
    Ok(ServerTls {
        ca_cert,
        server_cert,
        server_key,
    })
}

/// Writes a self-signed CA certificate that has nothing to do with any cluster's certificates
/// into `dir` (as `unrelated-ca.crt`, key `unrelated-ca.key`) and returns the certificate's path.
///
/// Use it to check that `sslmode=verify-ca` / `verify-full` fail against the wrong root.
/// `dir` must exist. Needs the `openssl` command-line tool.
pub fn generate_unrelated_ca(dir: &Path) -> Result<PathBuf, TestkitError> {
    let openssl = find_openssl()?;
    let (cert, _key) = generate_ca(&openssl, dir, "unrelated-ca", "pgcdc unrelated test CA")?;
    Ok(cert)
}

/// A positive, practically unique serial number in hex.
fn serial() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // Clear the top bit so the serial is positive; make sure it is non-zero.
    format!("0x{:016x}", (mixed & 0x7fff_ffff_ffff_ffff) | 1)
}
