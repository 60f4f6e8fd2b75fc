//! Reading the bootstrap's table list through psql (shared by the integration tests).

use pgcdc_core::snapshot::TABLE_COLUMNS;
use pgcdc_core::value::Json;

/// The SQL that runs the table-list query `q` with each row as one line of JSON, so that any
/// text survives psql.
pub fn as_json_lines(q: &str) -> String {
    format!("SELECT row_to_json(q)::text FROM ({q}) q")
}

/// The rows of [`as_json_lines`]'s output, each column as its text (booleans as `t`/`f`), in
/// the order of [`TABLE_COLUMNS`].
pub fn parse_json_lines(out: &str) -> Vec<Vec<Option<String>>> {
    out.lines()
        .map(|line| {
            let Json::Object(members) = Json::parse(line).expect("row JSON") else {
                panic!("not an object: {line}")
            };
            let names: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, TABLE_COLUMNS);
            members
                .into_iter()
                .map(|(_, v)| match v {
                    Json::Null => None,
                    Json::String(s) | Json::Number(s) => Some(s),
                    Json::Bool(b) => Some(if b { "t" } else { "f" }.to_owned()),
                    other => panic!("unexpected {other:?}"),
                })
                .collect()
        })
        .collect()
}
