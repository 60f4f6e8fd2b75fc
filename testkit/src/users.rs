//! The roles every cluster is created with.

/// How `pg_hba.conf` authenticates a user over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `trust`: no password.
    Trust,
    /// `password`: cleartext password.
    Cleartext,
    /// `md5`: MD5 challenge (the password is stored as MD5).
    Md5,
    /// `scram-sha-256`.
    ScramSha256,
}

impl AuthMethod {
    /// The method's name in `pg_hba.conf`.
    pub const fn hba_name(self) -> &'static str {
        match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Cleartext => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
        }
    }
}

/// A login role created in every cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct User {
    /// The role name.
    pub name: &'static str,
    /// The password (`None` for the trust user, which has none).
    pub password: Option<&'static str>,
    /// How `pg_hba.conf` authenticates this user over TCP (normal and replication connections).
    pub auth: AuthMethod,
    /// Whether the role has the `REPLICATION` attribute.
    pub replication: bool,
}

/// `pgcdc_scram`: SCRAM-SHA-256, replication. The password contains a non-ASCII character
/// (`ü`, U+00FC) to exercise SASLprep.
pub const SCRAM_USER: User = User {
    name: "pgcdc_scram",
    password: Some("scram-secret-\u{fc}1"),
    auth: AuthMethod::ScramSha256,
    replication: true,
};

/// `pgcdc_clear`: cleartext password authentication (`password`), replication.
pub const CLEARTEXT_USER: User = User {
    name: "pgcdc_clear",
    password: Some("clear-secret"),
    auth: AuthMethod::Cleartext,
    replication: true,
};

/// `pgcdc_md5`: MD5 authentication with an MD5-stored password, replication.
pub const MD5_USER: User = User {
    name: "pgcdc_md5",
    password: Some("md5-secret"),
    auth: AuthMethod::Md5,
    replication: true,
};

/// `pgcdc_trust`: no password (`trust`), replication.
pub const TRUST_USER: User = User {
    name: "pgcdc_trust",
    password: None,
    auth: AuthMethod::Trust,
    replication: true,
};

/// `pgcdc_norepl`: SCRAM-SHA-256, but *without* the `REPLICATION` attribute.
pub const NOREPL_USER: User = User {
    name: "pgcdc_norepl",
    password: Some("norepl-secret"),
    auth: AuthMethod::ScramSha256,
    replication: false,
};

/// Every test user, in creation order.
pub const USERS: [User; 5] = [
    SCRAM_USER,
    CLEARTEXT_USER,
    MD5_USER,
    TRUST_USER,
    NOREPL_USER,
];

/// Quotes an SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal (with `standard_conforming_strings` on).
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The SQL that creates the test users.
pub(crate) fn create_users_sql() -> String {
    let mut sql = String::new();
    // Create the MD5 user last, after switching password_encryption.
    let mut ordered: Vec<&User> = USERS.iter().filter(|u| u.auth != AuthMethod::Md5).collect();
    ordered.extend(USERS.iter().filter(|u| u.auth == AuthMethod::Md5));
    for user in ordered {
        let encryption = if user.auth == AuthMethod::Md5 {
            "md5"
        } else {
            "scram-sha-256"
        };
        sql.push_str(&format!("SET password_encryption = '{encryption}';\n"));
        sql.push_str(&format!(
            "CREATE ROLE {} LOGIN{};\n",
            quote_ident(user.name),
            if user.replication { " REPLICATION" } else { "" }
        ));
        if let Some(password) = user.password {
            sql.push_str(&format!(
                "ALTER ROLE {} PASSWORD {};\n",
                quote_ident(user.name),
                quote_literal(password)
            ));
        }
    }
    sql.push_str("RESET password_encryption;\n");
    let all = all_user_idents();
    sql.push_str(&format!("GRANT ALL ON DATABASE postgres TO {all};\n"));
    sql.push_str(&format!("GRANT ALL ON SCHEMA public TO {all};\n"));
    sql
}

/// `"u1", "u2", ...` for every test user.
pub(crate) fn all_user_idents() -> String {
    USERS
        .iter()
        .map(|u| quote_ident(u.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `pg_hba.conf` of a cluster.
pub(crate) fn pg_hba_conf() -> String {
    let mut hba = String::from(
        "# Written by pgcdc-testkit.\n\
         # TYPE  DATABASE     USER  ADDRESS  METHOD\n\
         local   all          all            trust\n\
         local   replication  all            trust\n",
    );
    for user in USERS {
        // `all` does not match physical replication connections, hence the second line.
        for database in ["all", "replication"] {
            hba.push_str(&format!(
                "host    {database:<12} {} 127.0.0.1/32 {}\n",
                user.name,
                user.auth.hba_name()
            ));
        }
    }
    hba.push_str("host    replication  all 127.0.0.1/32 scram-sha-256\n");
    hba.push_str("host    all          all 127.0.0.1/32 scram-sha-256\n");
    hba
}
