//! Built-in type OIDs (PROTOCOL.md §6.3) and the registry of user-defined types.

use std::collections::HashMap;
use std::fmt;

use super::MAX_NESTING;

pub use crate::pgoutput::Oid;

/// One row of the built-in type table.
struct Builtin {
    oid: u32,
    name: &'static str,
    array: u32,
}

macro_rules! builtins {
    ($( $konst:ident $akonst:ident $name:literal $oid:literal $aoid:literal; )*) => {
        impl Oid {
            $(
                #[doc = concat!("`", $name, "` (OID ", stringify!($oid), ").")]
                pub const $konst: Oid = Oid($oid);
                #[doc = concat!("`", $name, "[]`, named `_", $name, "` (OID ", stringify!($aoid), ").")]
                pub const $akonst: Oid = Oid($aoid);
            )*
        }

        const BUILTINS: &[Builtin] = &[ $( Builtin { oid: $oid, name: $name, array: $aoid }, )* ];

        /// The name of a built-in type (arrays as `_elem`), or `None`.
        fn builtin_name(oid: u32) -> Option<&'static str> {
            match oid {
                $( $oid => Some($name), )*
                $( $aoid => Some(concat!("_", $name)), )*
                705 => Some("unknown"),
                2278 => Some("void"),
                _ => None,
            }
        }

        /// The element type of a built-in array type.
        fn builtin_element(oid: u32) -> Option<u32> {
            match oid {
                $( $aoid => Some($oid), )*
                _ => None,
            }
        }
    };
}

builtins! {
    BOOL BOOL_ARRAY "bool" 16 1000;
    BYTEA BYTEA_ARRAY "bytea" 17 1001;
    CHAR CHAR_ARRAY "char" 18 1002;
    NAME NAME_ARRAY "name" 19 1003;
    INT8 INT8_ARRAY "int8" 20 1016;
    INT2 INT2_ARRAY "int2" 21 1005;
    INT2VECTOR INT2VECTOR_ARRAY "int2vector" 22 1006;
    INT4 INT4_ARRAY "int4" 23 1007;
    REGPROC REGPROC_ARRAY "regproc" 24 1008;
    TEXT TEXT_ARRAY "text" 25 1009;
    OID OID_ARRAY "oid" 26 1028;
    TID TID_ARRAY "tid" 27 1010;
    XID XID_ARRAY "xid" 28 1011;
    CID CID_ARRAY "cid" 29 1012;
    OIDVECTOR OIDVECTOR_ARRAY "oidvector" 30 1013;
    JSON JSON_ARRAY "json" 114 199;
    XML XML_ARRAY "xml" 142 143;
    POINT POINT_ARRAY "point" 600 1017;
    LSEG LSEG_ARRAY "lseg" 601 1018;
    PATH PATH_ARRAY "path" 602 1019;
    BOX BOX_ARRAY "box" 603 1020;
    POLYGON POLYGON_ARRAY "polygon" 604 1027;
    LINE LINE_ARRAY "line" 628 629;
    CIDR CIDR_ARRAY "cidr" 650 651;
    FLOAT4 FLOAT4_ARRAY "float4" 700 1021;
    FLOAT8 FLOAT8_ARRAY "float8" 701 1022;
    CIRCLE CIRCLE_ARRAY "circle" 718 719;
    MACADDR8 MACADDR8_ARRAY "macaddr8" 774 775;
    MONEY MONEY_ARRAY "money" 790 791;
    MACADDR MACADDR_ARRAY "macaddr" 829 1040;
    INET INET_ARRAY "inet" 869 1041;
    ACLITEM ACLITEM_ARRAY "aclitem" 1033 1034;
    BPCHAR BPCHAR_ARRAY "bpchar" 1042 1014;
    VARCHAR VARCHAR_ARRAY "varchar" 1043 1015;
    DATE DATE_ARRAY "date" 1082 1182;
    TIME TIME_ARRAY "time" 1083 1183;
    TIMESTAMP TIMESTAMP_ARRAY "timestamp" 1114 1115;
    TIMESTAMPTZ TIMESTAMPTZ_ARRAY "timestamptz" 1184 1185;
    INTERVAL INTERVAL_ARRAY "interval" 1186 1187;
    TIMETZ TIMETZ_ARRAY "timetz" 1266 1270;
    BIT BIT_ARRAY "bit" 1560 1561;
    VARBIT VARBIT_ARRAY "varbit" 1562 1563;
    NUMERIC NUMERIC_ARRAY "numeric" 1700 1231;
    REFCURSOR REFCURSOR_ARRAY "refcursor" 1790 2201;
    REGPROCEDURE REGPROCEDURE_ARRAY "regprocedure" 2202 2207;
    REGOPER REGOPER_ARRAY "regoper" 2203 2208;
    REGOPERATOR REGOPERATOR_ARRAY "regoperator" 2204 2209;
    REGCLASS REGCLASS_ARRAY "regclass" 2205 2210;
    REGTYPE REGTYPE_ARRAY "regtype" 2206 2211;
    RECORD RECORD_ARRAY "record" 2249 2287;
    CSTRING CSTRING_ARRAY "cstring" 2275 1263;
    UUID UUID_ARRAY "uuid" 2950 2951;
    TXID_SNAPSHOT TXID_SNAPSHOT_ARRAY "txid_snapshot" 2970 2949;
    PG_LSN PG_LSN_ARRAY "pg_lsn" 3220 3221;
    TSVECTOR TSVECTOR_ARRAY "tsvector" 3614 3643;
    TSQUERY TSQUERY_ARRAY "tsquery" 3615 3645;
    REGCONFIG REGCONFIG_ARRAY "regconfig" 3734 3735;
    REGDICTIONARY REGDICTIONARY_ARRAY "regdictionary" 3769 3770;
    JSONB JSONB_ARRAY "jsonb" 3802 3807;
    INT4RANGE INT4RANGE_ARRAY "int4range" 3904 3905;
    NUMRANGE NUMRANGE_ARRAY "numrange" 3906 3907;
    TSRANGE TSRANGE_ARRAY "tsrange" 3908 3909;
    TSTZRANGE TSTZRANGE_ARRAY "tstzrange" 3910 3911;
    DATERANGE DATERANGE_ARRAY "daterange" 3912 3913;
    INT8RANGE INT8RANGE_ARRAY "int8range" 3926 3927;
    JSONPATH JSONPATH_ARRAY "jsonpath" 4072 4073;
    REGNAMESPACE REGNAMESPACE_ARRAY "regnamespace" 4089 4090;
    REGROLE REGROLE_ARRAY "regrole" 4096 4097;
    REGCOLLATION REGCOLLATION_ARRAY "regcollation" 4191 4192;
    INT4MULTIRANGE INT4MULTIRANGE_ARRAY "int4multirange" 4451 6150;
    NUMMULTIRANGE NUMMULTIRANGE_ARRAY "nummultirange" 4532 6151;
    TSMULTIRANGE TSMULTIRANGE_ARRAY "tsmultirange" 4533 6152;
    TSTZMULTIRANGE TSTZMULTIRANGE_ARRAY "tstzmultirange" 4534 6153;
    DATEMULTIRANGE DATEMULTIRANGE_ARRAY "datemultirange" 4535 6155;
    INT8MULTIRANGE INT8MULTIRANGE_ARRAY "int8multirange" 4536 6157;
    PG_SNAPSHOT PG_SNAPSHOT_ARRAY "pg_snapshot" 5038 5039;
    XID8 XID8_ARRAY "xid8" 5069 271;
}

impl Oid {
    /// OID 0 (`InvalidOid`): no type. Used as the element type of an array type whose
    /// element type is not known.
    pub const INVALID: Oid = Oid(0);
    /// `unknown` (OID 705; it has no array type).
    pub const UNKNOWN: Oid = Oid(705);
    /// `void` (OID 2278; it has no array type).
    pub const VOID: Oid = Oid(2278);

    /// The lowest OID that PostgreSQL describes with a pgoutput Type message
    /// (`FirstGenbkiObjectId`); everything below it is built in.
    pub const FIRST_NON_BUILTIN: u32 = 10_000;

    /// The raw OID.
    pub const fn as_u32(self) -> u32 {
        self.0
    }

    /// The `pg_catalog` name of a built-in type (`int4`, `_int4` for its array), or `None`
    /// for a type that is not in the built-in table.
    pub fn builtin_name(self) -> Option<&'static str> {
        builtin_name(self.0)
    }

    /// Whether this OID is a built-in type from the table of PROTOCOL.md §6.3.
    pub fn is_builtin(self) -> bool {
        builtin_name(self.0).is_some()
    }

    /// Every built-in type OID of the table (element types, their array types, `unknown` and
    /// `void`).
    pub fn builtins() -> impl Iterator<Item = Oid> {
        BUILTINS
            .iter()
            .flat_map(|b| [Oid(b.oid), Oid(b.array)])
            .chain([Oid::UNKNOWN, Oid::VOID])
    }

    /// Looks up a built-in type by its `pg_catalog` name (`"int4"`, `"_int4"`, `"varchar"`).
    pub fn from_builtin_name(name: &str) -> Option<Oid> {
        match name {
            "unknown" => return Some(Oid::UNKNOWN),
            "void" => return Some(Oid::VOID),
            _ => {}
        }
        if let Some(elem) = name.strip_prefix('_') {
            return BUILTINS
                .iter()
                .find(|b| b.name == elem)
                .map(|b| Oid(b.array));
        }
        BUILTINS.iter().find(|b| b.name == name).map(|b| Oid(b.oid))
    }

    /// The array type of a built-in element type (`INT4` → `INT4_ARRAY`).
    pub fn builtin_array(self) -> Option<Oid> {
        BUILTINS
            .iter()
            .find(|b| b.oid == self.0)
            .map(|b| Oid(b.array))
    }

    /// The element type of a built-in array type (`INT4_ARRAY` → `INT4`).
    pub fn builtin_element(self) -> Option<Oid> {
        builtin_element(self.0).map(Oid)
    }

    /// The subtype of a built-in range type (`INT4RANGE` → `INT4`).
    pub fn builtin_range_subtype(self) -> Option<Oid> {
        Some(match self {
            Oid::INT4RANGE => Oid::INT4,
            Oid::INT8RANGE => Oid::INT8,
            Oid::NUMRANGE => Oid::NUMERIC,
            Oid::TSRANGE => Oid::TIMESTAMP,
            Oid::TSTZRANGE => Oid::TIMESTAMPTZ,
            Oid::DATERANGE => Oid::DATE,
            _ => return None,
        })
    }

    /// The range type of a built-in multirange type (`INT4MULTIRANGE` → `INT4RANGE`).
    pub fn builtin_multirange_range(self) -> Option<Oid> {
        Some(match self {
            Oid::INT4MULTIRANGE => Oid::INT4RANGE,
            Oid::INT8MULTIRANGE => Oid::INT8RANGE,
            Oid::NUMMULTIRANGE => Oid::NUMRANGE,
            Oid::TSMULTIRANGE => Oid::TSRANGE,
            Oid::TSTZMULTIRANGE => Oid::TSTZRANGE,
            Oid::DATEMULTIRANGE => Oid::DATERANGE,
            _ => return None,
        })
    }
}

/// A type OID shown with its name when it is a built-in: `int4 (oid 23)`, `oid 16400`
/// ([`Oid::describe_type`]).
#[derive(Clone, Copy, Debug)]
pub struct TypeDescription(Oid);

impl fmt::Display for TypeDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match builtin_name(self.0.0) {
            Some(name) => write!(f, "{name} (oid {})", self.0.0),
            None => write!(f, "oid {}", self.0.0),
        }
    }
}

impl Oid {
    /// This OID as a type, for messages: `int4 (oid 23)` for a built-in, `oid 16400`
    /// otherwise.
    pub fn describe_type(self) -> TypeDescription {
        TypeDescription(self)
    }
}

/// What a user-defined type is, as far as decoding is concerned.
///
/// pgoutput's Type message carries only a namespace and a name, so the kind of a user type is
/// either inferred by [`TypeRegistry::register_from_type_message`] or told by the caller (who
/// may read it from `pg_type`) with [`TypeRegistry::register`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeKind {
    /// Nothing is known: values decode to [`Value::Unknown`](super::Value::Unknown) with their
    /// text.
    Opaque,
    /// An enum: values decode to [`Value::Enum`](super::Value::Enum) with their label.
    Enum,
    /// A domain: values decode as the base type.
    Domain {
        /// The type the domain is defined over.
        base: Oid,
    },
    /// A range over `subtype`.
    Range {
        /// The type of the bounds.
        subtype: Oid,
    },
    /// A multirange of the range type `range`.
    Multirange {
        /// The range type of the members.
        range: Oid,
    },
    /// A composite (row) type: values decode to [`Value::Unknown`](super::Value::Unknown) with
    /// their text.
    Composite,
    /// An array of `element`.
    Array {
        /// The element type.
        element: Oid,
    },
}

/// A user-defined type known to a [`TypeRegistry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserType {
    /// The type's OID.
    pub oid: Oid,
    /// Its namespace (`""` when not known; pgoutput sends `""` for `pg_catalog`).
    pub namespace: String,
    /// Its name (`""` when not known). For a domain learned from a Type message this is the
    /// base type's name, as pgoutput sends it.
    pub name: String,
    /// How values of the type decode.
    pub kind: TypeKind,
}

/// How a type decodes after following domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A built-in scalar or other built-in type: decode with the built-in's rules.
    Builtin(Oid),
    /// An array of the element type.
    Array(Oid),
    /// A range with this subtype.
    Range(Oid),
    /// A multirange whose ranges have this subtype.
    Multirange(Oid),
    /// An enum with this OID.
    Enum(Oid),
    /// Unknown: keep the text.
    Opaque,
}

/// The types a decoder knows: every built-in type (always), plus user-defined types learned
/// from pgoutput Type messages or registered by the caller.
///
/// Built-in OIDs (below 10000) cannot be overridden.
#[derive(Clone, Debug, Default)]
pub struct TypeRegistry {
    types: HashMap<u32, UserType>,
}

impl TypeRegistry {
    /// A registry that knows only the built-in types.
    pub fn new() -> Self {
        TypeRegistry::default()
    }

    /// The number of user-defined types registered.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether no user-defined type is registered.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The registered user type with this OID.
    pub fn get(&self, oid: Oid) -> Option<&UserType> {
        self.types.get(&oid.0)
    }

    /// Whether `oid` is a built-in type or a registered user type.
    pub fn knows(&self, oid: Oid) -> bool {
        oid.is_builtin() || self.types.contains_key(&oid.0)
    }

    /// Forgets a registered user type.
    pub fn remove(&mut self, oid: Oid) -> Option<UserType> {
        self.types.remove(&oid.0)
    }

    /// Registers (or re-registers) `oid` as a user type of the given kind, keeping any name
    /// learned earlier. Built-in OIDs are ignored and `false` is returned.
    pub fn register(&mut self, oid: Oid, kind: TypeKind) -> bool {
        if oid.is_builtin() {
            return false;
        }
        self.types
            .entry(oid.0)
            .and_modify(|t| t.kind = kind.clone())
            .or_insert_with(|| UserType {
                oid,
                namespace: String::new(),
                name: String::new(),
                kind,
            });
        true
    }

    /// Registers `oid` with its namespace, name and kind. Built-in OIDs are ignored and
    /// `false` is returned.
    pub fn register_named(
        &mut self,
        oid: Oid,
        namespace: &str,
        name: &str,
        kind: TypeKind,
    ) -> bool {
        if oid.is_builtin() {
            return false;
        }
        self.types.insert(
            oid.0,
            UserType {
                oid,
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                kind,
            },
        );
        true
    }

    /// Learns a type from a pgoutput Type message (`Y oid namespace name`) and returns the
    /// kind it now has.
    ///
    /// pgoutput sends, for a domain, the domain's OID with the **base type's** namespace and
    /// name (PROTOCOL.md §5.2). So:
    /// * a `pg_catalog` (or `""`) name of a built-in type, such as `int4` or `_text`, makes
    ///   `oid` a domain over that built-in;
    /// * the name of another registered user type makes `oid` a domain over it;
    /// * a name `_x` where `x` is a registered user type in the same namespace makes `oid` an
    ///   array of `x`; any other `_x` (PostgreSQL's naming of array types) makes it an array
    ///   of [`Oid::INVALID`], whose elements decode as
    ///   [`Value::Unknown`](super::Value::Unknown) text (sent again once `x` is registered,
    ///   the Type message upgrades it to an array of `x`);
    /// * otherwise it becomes [`TypeKind::Opaque`] (decoded as text) until the caller
    ///   registers it as something else.
    ///
    /// A type that already has a kind other than [`TypeKind::Opaque`] keeps it (only its
    /// namespace and name are updated), so a kind told by [`register`](Self::register) is
    /// never overwritten by a guess.
    pub fn register_from_type_message(
        &mut self,
        oid: Oid,
        namespace: &str,
        name: &str,
    ) -> TypeKind {
        if oid.is_builtin() {
            return TypeKind::Opaque;
        }
        let keep = self.types.get(&oid.0).is_some_and(|t| {
            t.kind != TypeKind::Opaque
                && t.kind
                    != (TypeKind::Array {
                        element: Oid::INVALID,
                    })
        });
        let inferred = if keep {
            None
        } else {
            self.infer_kind(oid, namespace, name)
        };
        let entry = self.types.entry(oid.0).or_insert_with(|| UserType {
            oid,
            namespace: String::new(),
            name: String::new(),
            kind: TypeKind::Opaque,
        });
        entry.namespace.clear();
        entry.namespace.push_str(namespace);
        entry.name.clear();
        entry.name.push_str(name);
        if let Some(kind) = inferred {
            entry.kind = kind;
        }
        entry.kind.clone()
    }

    fn infer_kind(&self, oid: Oid, namespace: &str, name: &str) -> Option<TypeKind> {
        if namespace.is_empty() || namespace == "pg_catalog" {
            if let Some(base) = Oid::from_builtin_name(name) {
                return Some(TypeKind::Domain { base });
            }
        }
        let find = |n: &str| {
            self.types
                .values()
                .find(|t| {
                    // A domain carries its base type's name, so it never owns a name.
                    t.oid != oid
                        && !matches!(t.kind, TypeKind::Domain { .. })
                        && t.namespace == namespace
                        && t.name == n
                })
                .map(|t| t.oid)
        };
        if let Some(base) = find(name) {
            return Some(TypeKind::Domain { base });
        }
        if let Some(elem) = name.strip_prefix('_') {
            // An array type whose element is not known (yet): elements decode as unknown.
            let element = find(elem).unwrap_or(Oid::INVALID);
            return Some(TypeKind::Array { element });
        }
        None
    }

    /// How `oid` decodes, following domains (at most [`MAX_NESTING`] of them; a cycle is
    /// treated as unknown).
    pub(crate) fn shape(&self, oid: Oid) -> Shape {
        self.shape_inner(oid, true)
    }

    fn shape_inner(&self, oid: Oid, follow_multirange: bool) -> Shape {
        let mut cur = oid;
        for _ in 0..MAX_NESTING {
            if cur.is_builtin() {
                if let Some(e) = cur.builtin_element() {
                    return Shape::Array(e);
                }
                if let Some(s) = cur.builtin_range_subtype() {
                    return Shape::Range(s);
                }
                if let Some(r) = cur.builtin_multirange_range() {
                    return r
                        .builtin_range_subtype()
                        .map_or(Shape::Opaque, Shape::Multirange);
                }
                return Shape::Builtin(cur);
            }
            let Some(t) = self.types.get(&cur.0) else {
                return Shape::Opaque;
            };
            match &t.kind {
                TypeKind::Domain { base } => cur = *base,
                TypeKind::Enum => return Shape::Enum(cur),
                TypeKind::Range { subtype } => return Shape::Range(*subtype),
                TypeKind::Multirange { range } if follow_multirange => {
                    return match self.shape_inner(*range, false) {
                        Shape::Range(sub) => Shape::Multirange(sub),
                        _ => Shape::Opaque,
                    };
                }
                TypeKind::Array { element } => return Shape::Array(*element),
                TypeKind::Multirange { .. } | TypeKind::Opaque | TypeKind::Composite => {
                    return Shape::Opaque;
                }
            }
        }
        Shape::Opaque
    }

    /// The element type of an array type (built-in or registered, through domains).
    pub fn array_element(&self, oid: Oid) -> Option<Oid> {
        match self.shape(oid) {
            Shape::Array(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table() {
        assert_eq!(Oid::INT4.builtin_name(), Some("int4"));
        assert_eq!(Oid::INT4_ARRAY.builtin_name(), Some("_int4"));
        assert_eq!(Oid::from_builtin_name("varchar"), Some(Oid(1043)));
        assert_eq!(Oid::from_builtin_name("_varchar"), Some(Oid(1015)));
        assert_eq!(Oid::from_builtin_name("nope"), None);
        assert_eq!(Oid::XID8_ARRAY, Oid(271));
        assert_eq!(Oid::INT4.builtin_array(), Some(Oid::INT4_ARRAY));
        assert_eq!(Oid(1231).builtin_element(), Some(Oid::NUMERIC));
        assert_eq!(Oid::UNKNOWN.builtin_name(), Some("unknown"));
        assert_eq!(Oid::INT4.describe_type().to_string(), "int4 (oid 23)");
        assert_eq!(Oid(16400).describe_type().to_string(), "oid 16400");
    }

    #[test]
    fn domains_and_arrays_from_type_messages() {
        let mut r = TypeRegistry::new();
        assert_eq!(
            r.register_from_type_message(Oid(16400), "", "int4"),
            TypeKind::Domain { base: Oid::INT4 }
        );
        assert_eq!(r.shape(Oid(16400)), Shape::Builtin(Oid::INT4));
        assert_eq!(
            r.register_from_type_message(Oid(16498), "public", "_other"),
            TypeKind::Array {
                element: Oid::INVALID
            }
        );
        assert_eq!(
            r.register_from_type_message(Oid(16499), "public", "_mood"),
            TypeKind::Array {
                element: Oid::INVALID
            }
        );
        assert_eq!(
            r.register_from_type_message(Oid(16500), "public", "mood"),
            TypeKind::Opaque
        );
        assert!(r.register(Oid(16500), TypeKind::Enum));
        assert_eq!(r.get(Oid(16500)).map(|t| t.name.as_str()), Some("mood"));
        assert_eq!(
            r.register_from_type_message(Oid(16499), "public", "_mood"),
            TypeKind::Array {
                element: Oid(16500)
            }
        );
        assert_eq!(
            r.register_from_type_message(Oid(16510), "public", "mood"),
            TypeKind::Domain { base: Oid(16500) }
        );
        assert_eq!(r.shape(Oid(16510)), Shape::Enum(Oid(16500)));
        // Re-sending the enum's own Type message keeps its kind.
        assert_eq!(
            r.register_from_type_message(Oid(16500), "public", "mood"),
            TypeKind::Enum
        );
        assert!(!r.register(Oid::INT4, TypeKind::Enum));
    }

    #[test]
    fn domain_cycles_are_opaque() {
        let mut r = TypeRegistry::new();
        r.register(Oid(20000), TypeKind::Domain { base: Oid(20001) });
        r.register(Oid(20001), TypeKind::Domain { base: Oid(20000) });
        assert_eq!(r.shape(Oid(20000)), Shape::Opaque);
        r.register(Oid(20002), TypeKind::Multirange { range: Oid(20002) });
        assert_eq!(r.shape(Oid(20002)), Shape::Opaque);
    }
}
