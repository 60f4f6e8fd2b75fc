//! Simple-query results: text result sets for replication commands and catalog queries.

use bytes::Bytes;

use crate::wire::{DataRow, FieldDescription};

/// One statement's result from the simple query protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryResult {
    /// Column descriptions (empty for commands that return no rows).
    pub columns: Vec<FieldDescription>,
    /// Rows, each a slice of the wire frame per column (`None` is SQL NULL).
    pub rows: Vec<DataRow>,
    /// The command tag, such as `SELECT 3` or `IDENTIFY_SYSTEM`; empty for an empty query.
    pub tag: String,
}

/// A value could not be read from a query result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    /// The named column is absent.
    #[error("result of {tag:?} has no column {column:?}")]
    MissingColumn {
        /// The command tag.
        tag: String,
        /// The column asked for.
        column: String,
    },
    /// The row index is out of range.
    #[error("result of {tag:?} has no row {row}")]
    MissingRow {
        /// The command tag.
        tag: String,
        /// The row asked for.
        row: usize,
    },
    /// The value is not valid UTF-8 text.
    #[error("column {column:?} of {tag:?} is not UTF-8 text")]
    NotText {
        /// The command tag.
        tag: String,
        /// The column.
        column: String,
    },
    /// The value did not parse as the expected type.
    #[error("column {column:?} of {tag:?} holds {value:?}, which is not a valid {expected}")]
    Invalid {
        /// The command tag.
        tag: String,
        /// The column.
        column: String,
        /// The text found.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

impl QueryResult {
    /// A result of text columns (type `text`, format text) holding `rows`, as the server
    /// would send it for a `SELECT`: for tests, and for callers that obtained rows some other
    /// way (for example through psql) and want to use the parsers that take a result.
    pub fn from_text_rows<S: AsRef<str>>(columns: &[&str], rows: &[Vec<Option<S>>]) -> Self {
        QueryResult {
            columns: columns
                .iter()
                .map(|name| FieldDescription {
                    name: (*name).to_owned(),
                    table_oid: 0,
                    column_id: 0,
                    type_oid: 25,
                    type_size: -1,
                    type_modifier: -1,
                    format: 0,
                })
                .collect(),
            rows: rows
                .iter()
                .map(|row| DataRow {
                    values: row
                        .iter()
                        .map(|v| {
                            v.as_ref()
                                .map(|s| Bytes::copy_from_slice(s.as_ref().as_bytes()))
                        })
                        .collect(),
                })
                .collect(),
            tag: format!("SELECT {}", rows.len()),
        }
    }

    /// The index of the named column.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The raw value of `column` in row `row` (`Ok(None)` for SQL NULL).
    pub fn raw(&self, row: usize, column: &str) -> Result<Option<&Bytes>, ResultError> {
        let idx = self
            .column_index(column)
            .ok_or_else(|| ResultError::MissingColumn {
                tag: self.tag.clone(),
                column: column.to_owned(),
            })?;
        let r = self.rows.get(row).ok_or_else(|| ResultError::MissingRow {
            tag: self.tag.clone(),
            row,
        })?;
        Ok(r.values.get(idx).and_then(Option::as_ref))
    }

    /// The text value of `column` in row `row` (`Ok(None)` for SQL NULL).
    pub fn text(&self, row: usize, column: &str) -> Result<Option<&str>, ResultError> {
        match self.raw(row, column)? {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| ResultError::NotText {
                    tag: self.tag.clone(),
                    column: column.to_owned(),
                }),
        }
    }

    /// The value of `column` in row `row` parsed with `FromStr`; NULL is an error.
    pub fn parse<T: std::str::FromStr>(
        &self,
        row: usize,
        column: &str,
        expected: &'static str,
    ) -> Result<T, ResultError> {
        let invalid = |value: &str| ResultError::Invalid {
            tag: self.tag.clone(),
            column: column.to_owned(),
            value: value.to_owned(),
            expected,
        };
        let t = self.text(row, column)?.ok_or_else(|| invalid("NULL"))?;
        t.parse().map_err(|_| invalid(t))
    }
}
