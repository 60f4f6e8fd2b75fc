//! The setup sequence: IDENTIFY_SYSTEM, catalog checks, slot, START_REPLICATION.
//!
//! ```text
//! IDENTIFY_SYSTEM → pg_settings → [tables exist] → publication → [CREATE PUBLICATION]
//!   → [publication tables] → primary keys → [user types] → slot lookup
//!   → [DROP_REPLICATION_SLOT] → [CREATE_REPLICATION_SLOT] → [snapshot held]
//!   → START_REPLICATION → streaming
//! ```

use std::time::Instant;

use crate::assemble::TableRef;
use crate::commands::IdentifySystem;
use crate::error::{ServerError, SqlState};
use crate::query::QueryResult;

use super::catalog::{
    self, SETTINGS_QUERY, TableName, create_slot_command, load_user_types, parse_created_slot,
    parse_primary_keys, parse_publication, parse_settings, parse_slot, parse_tables,
    pid_from_message, start_replication_command, user_types_query,
};
use super::session::{ReplicationSession, Step};
use super::{Phase, SessionError, SessionEvent};

/// How often a raced slot creation (42710) is retried with a new lookup.
const MAX_SLOT_RETRIES: u8 = 3;

impl ReplicationSession {
    pub(super) fn on_query_complete(
        &mut self,
        results: Vec<QueryResult>,
        now: Instant,
    ) -> Result<(), SessionError> {
        self.attempt.command_deadline = None;
        match self.step {
            Step::Stopping => {
                self.finish_stop();
                return Ok(());
            }
            Step::Streaming => return Err(SessionError::ServerEndedStream),
            _ => {}
        }
        let r = results.into_iter().next().unwrap_or_default();
        match self.step {
            Step::Identify => self.after_identify(&r, now),
            Step::Settings => self.after_settings(&r, now),
            Step::TablesExist => self.after_tables_exist(&r, now),
            Step::Publication => self.after_publication(&r, now),
            Step::CreatePublication => {
                self.attempt.publication_all_tables = self.attempt.tables.is_empty();
                self.events.push_back(SessionEvent::Warning(format!(
                    "created publication {} ({})",
                    self.options.publication_name,
                    if self.attempt.publication_all_tables {
                        "FOR ALL TABLES".to_owned()
                    } else {
                        format!("FOR TABLE {}", display_tables(&self.attempt.tables))
                    }
                )));
                self.check_publication_tables(now)
            }
            Step::PublicationTables => self.after_publication_tables(&r, now),
            Step::PrimaryKeys => self.after_primary_keys(&r, now),
            Step::UserTypes => self.after_user_types(&r, now),
            Step::SlotLookup => self.after_slot_lookup(&r, now),
            Step::DropSlot => self.create_slot(now),
            Step::CreateSlot => self.after_create_slot(&r, now),
            Step::CopySlot => {
                let temp = self.attempt.bootstrap_slot.clone().unwrap_or_default();
                let sql = catalog::drop_slot_command(&temp)?;
                self.send(Step::DropBootstrapSlot, &sql, now)
            }
            Step::DropBootstrapSlot => {
                self.attempt.bootstrap_slot = None;
                self.events.push_back(SessionEvent::SlotCreated {
                    slot_name: self.options.slot_name.clone(),
                    consistent_point: self.feedback.delivered(),
                    snapshot_name: None,
                    temporary: false,
                });
                self.start_replication(now)
            }
            Step::StartReplication => Err(SessionError::Protocol(
                "START_REPLICATION completed without starting a stream".to_owned(),
            )),
            Step::Idle | Step::Streaming | Step::Stopping => Err(SessionError::Protocol(
                "a query result arrived while no command was running".to_owned(),
            )),
        }
    }

    pub(super) fn on_query_failed(
        &mut self,
        e: ServerError,
        now: Instant,
    ) -> Result<(), SessionError> {
        self.attempt.command_deadline = None;
        match self.step {
            Step::Stopping => {
                self.finish_stop();
                Ok(())
            }
            Step::CreateSlot
                if e.code == Some(SqlState::DUPLICATE_OBJECT)
                    && self.attempt.slot_retries < MAX_SLOT_RETRIES =>
            {
                // Another session created it meanwhile: look again.
                self.attempt.slot_retries += 1;
                self.lookup_slot(now)
            }
            Step::StartReplication | Step::DropSlot if e.code == Some(SqlState::OBJECT_IN_USE) => {
                Err(SessionError::SlotActive {
                    slot: self.options.slot_name.clone(),
                    pid: pid_from_message(&e.message),
                })
            }
            Step::UserTypes => {
                // Types are an improvement, not a requirement: carry on without them.
                self.events.push_back(SessionEvent::Warning(format!(
                    "could not read user-defined types ({e}); values of enums, domains and \
                     user ranges decode from pgoutput Type messages only"
                )));
                self.lookup_slot(now)
            }
            _ => Err(SessionError::Server(Box::new(e))),
        }
    }

    pub(super) fn on_copy_started(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.step != Step::StartReplication {
            return Err(SessionError::Protocol(format!(
                "the server started a COPY while {}",
                self.step.describe()
            )));
        }
        self.step = Step::Streaming;
        self.phase = Phase::Streaming;
        self.attempt.command_deadline = None;
        self.attempt.streaming_since = Some(now);
        self.next_status_at = now.checked_add(self.status_interval);
        if !self.options.temporary_slot {
            self.streamed_from_slot = true;
            self.streaming_pid = self.attempt.backend_pid;
            self.slot_floor = self
                .slot_floor
                .max(self.attempt.slot_confirmed.unwrap_or(crate::Lsn::ZERO));
        }
        self.events.push_back(SessionEvent::StreamingStarted {
            requested_lsn: self.attempt.requested,
            slot_confirmed_lsn: self.attempt.slot_confirmed,
            proto_version: self.attempt.proto_version,
        });
        Ok(())
    }

    pub(super) fn on_server_copy_done(&mut self) -> Result<(), SessionError> {
        match self.step {
            // The stream ends; CommandComplete and ReadyForQuery (or EOF) follow.
            Step::Streaming | Step::Stopping => Ok(()),
            _ => Err(SessionError::Protocol(format!(
                "the server sent CopyDone while {}",
                self.step.describe()
            ))),
        }
    }

    fn after_identify(&mut self, r: &QueryResult, now: Instant) -> Result<(), SessionError> {
        let id = IdentifySystem::from_result(r).map_err(|e| {
            SessionError::Protocol(format!("unexpected IDENTIFY_SYSTEM result: {e}"))
        })?;
        if let Some(expected) = self.system_id
            && expected != id.system_id
        {
            return Err(SessionError::SystemIdentifierChanged {
                expected,
                found: id.system_id,
            });
        }
        let resume = self.feedback.resume_lsn();
        if let Some(tl) = self.timeline
            && tl != id.timeline
        {
            // LSNs past the fork point name other changes on the new timeline: what was
            // delivered says nothing about them.
            self.attempt.reset_reason = Some(format!(
                "the server's timeline changed from {tl} to {} (a failover or a point-in-time \
                 recovery)",
                id.timeline
            ));
        } else if !resume.is_zero() && id.xlogpos < resume {
            self.attempt.reset_reason = Some(format!(
                "the server's WAL position {} is below the resume position {resume} (a \
                 failover to a server that is behind, or a restore from a backup)",
                id.xlogpos
            ));
        }
        self.system_id = Some(id.system_id);
        self.timeline = Some(id.timeline);
        if let Some(db) = id.dbname {
            self.attempt.dbname = Some(db);
        }
        self.events.push_back(SessionEvent::Identified {
            system_id: id.system_id,
            timeline: id.timeline,
            xlogpos: id.xlogpos,
            server_version_num: self.server_version.unwrap_or_default(),
        });
        self.send(Step::Settings, SETTINGS_QUERY, now)
    }

    fn after_settings(&mut self, r: &QueryResult, now: Instant) -> Result<(), SessionError> {
        let s = parse_settings(r)?;
        match s.wal_level.as_deref() {
            Some("logical") => {}
            Some(other) => {
                return Err(SessionError::WalLevel {
                    actual: other.to_owned(),
                });
            }
            None => {
                return Err(SessionError::Protocol(
                    "pg_settings did not report wal_level".to_owned(),
                ));
            }
        }
        self.status_interval = self.options.effective_status_interval(s.wal_sender_timeout);
        if self.options.check_tables && !self.attempt.tables.is_empty() {
            let sql = catalog::tables_exist_query(&self.attempt.tables)?;
            self.send(Step::TablesExist, &sql, now)
        } else {
            self.lookup_publication(now)
        }
    }

    fn after_tables_exist(&mut self, r: &QueryResult, now: Instant) -> Result<(), SessionError> {
        let found = parse_tables(r, "nspname", "relname", "table")?;
        let missing = missing_tables(&self.attempt.tables, &found);
        if !missing.is_empty() {
            return Err(SessionError::TableMissing { tables: missing });
        }
        self.lookup_publication(now)
    }

    fn lookup_publication(&mut self, now: Instant) -> Result<(), SessionError> {
        let sql = catalog::publication_query(&self.options.publication_name)?;
        self.send(Step::Publication, &sql, now)
    }

    fn after_publication(&mut self, r: &QueryResult, now: Instant) -> Result<(), SessionError> {
        match parse_publication(r)? {
            Some(all_tables) => {
                self.attempt.publication_all_tables = all_tables;
                self.check_publication_tables(now)
            }
            None if self.options.create_publication => {
                let sql = catalog::create_publication(
                    &self.options.publication_name,
                    &self.attempt.tables,
                )?;
                self.send(Step::CreatePublication, &sql, now)
            }
            None => Err(SessionError::PublicationMissing {
                name: self.options.publication_name.clone(),
            }),
        }
    }

    fn check_publication_tables(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.options.check_tables
            && !self.attempt.tables.is_empty()
            && !self.attempt.publication_all_tables
        {
            let sql = catalog::publication_tables_query(&self.options.publication_name)?;
            self.send(Step::PublicationTables, &sql, now)
        } else {
            self.read_primary_keys(now)
        }
    }

    fn after_publication_tables(
        &mut self,
        r: &QueryResult,
        now: Instant,
    ) -> Result<(), SessionError> {
        let published = parse_tables(r, "schemaname", "tablename", "publication tables")?;
        let missing = missing_tables(&self.attempt.tables, &published);
        if !missing.is_empty() {
            return Err(SessionError::TablesNotInPublication {
                publication: self.options.publication_name.clone(),
                tables: missing,
            });
        }
        self.read_primary_keys(now)
    }

    fn read_primary_keys(&mut self, now: Instant) -> Result<(), SessionError> {
        let sql = catalog::primary_keys_query(&self.options.publication_name)?;
        self.send(Step::PrimaryKeys, &sql, now)
    }

    fn after_primary_keys(&mut self, r: &QueryResult, now: Instant) -> Result<(), SessionError> {
        for t in parse_primary_keys(r)? {
            // By OID, so a table renamed while streaming keeps its key.
            let table = match t.oid {
                Some(oid) => {
                    self.pipeline
                        .bind_table(oid, t.table.schema_or_public(), &t.table.name);
                    TableRef::Oid(oid)
                }
                None => TableRef::Name(t.table.to_string()),
            };
            if !t.primary_key.is_empty() {
                self.pipeline.set_primary_key(table, t.primary_key);
            }
        }
        self.drain_pipeline();
        if self.options.load_user_types {
            let sql = user_types_query(self.server_version.unwrap_or_default());
            self.send(Step::UserTypes, sql, now)
        } else {
            self.lookup_slot(now)
        }
    }

    fn after_user_types(&mut self, r: &QueryResult, now: Instant) -> Result<(), SessionError> {
        if let Err(e) = load_user_types(r, self.pipeline.type_registry_mut()) {
            self.events.push_back(SessionEvent::Warning(format!(
                "could not read all user-defined types ({e}); values of the others decode \
                 from pgoutput Type messages only"
            )));
        }
        self.lookup_slot(now)
    }

    fn lookup_slot(&mut self, now: Instant) -> Result<(), SessionError> {
        let sql = catalog::slot_query(&self.options.slot_name, self.server_version.unwrap_or(0))?;
        self.send(Step::SlotLookup, &sql, now)
    }

    fn after_slot_lookup(&mut self, r: &QueryResult, now: Instant) -> Result<(), SessionError> {
        let slot = self.options.slot_name.clone();
        let Some(info) = parse_slot(r)? else {
            if self.streamed_from_slot {
                return Err(SessionError::SlotLost {
                    slot,
                    delivered: self.feedback.delivered(),
                });
            }
            if self.options.create_slot || self.attempt.export {
                return self.create_slot(now);
            }
            return Err(SessionError::SlotMissing { slot });
        };
        if info.slot_type != "logical" {
            return Err(SessionError::SlotWrongType {
                slot,
                slot_type: info.slot_type,
            });
        }
        if let (Some(db), Some(ours)) = (&info.database, &self.attempt.dbname)
            && db != ours
        {
            return Err(SessionError::SlotWrongDatabase {
                slot,
                database: db.clone(),
                expected: ours.clone(),
            });
        }
        if info.plugin.as_deref() != Some("pgoutput") {
            return Err(SessionError::SlotWrongPlugin {
                slot,
                plugin: info.plugin.unwrap_or_default(),
            });
        }
        if info.synced {
            return Err(SessionError::SlotSynced { slot });
        }
        if let Some(reason) = info.invalidated() {
            return Err(SessionError::SlotInvalidated {
                slot,
                reason,
                confirmed: info.confirmed_flush,
            });
        }
        if self.streamed_from_slot {
            // Ours until someone else takes it: then it is never taken back.
            if info.active && info.active_pid.is_some() && info.active_pid != self.streaming_pid {
                return Err(SessionError::SlotTakenOver {
                    slot,
                    detail: format!(
                        "the process with PID {} holds it",
                        info.active_pid.unwrap_or_default()
                    ),
                });
            }
            let ours = self
                .feedback
                .flush_sent()
                .max(self.feedback.acked())
                .max(self.slot_floor);
            if let Some(theirs) = info.confirmed_flush
                && theirs > ours
                && self.attempt.reset_reason.is_none()
            {
                return Err(SessionError::SlotTakenOver {
                    slot,
                    detail: format!(
                        "its confirmed position {theirs} is past the {ours} this source sent"
                    ),
                });
            }
        } else if info.active && self.options.slot_in_use == crate::source_config::SlotInUse::Fail {
            return Err(SessionError::SlotBusy {
                slot,
                pid: info.active_pid,
            });
        }
        if info.active {
            return Err(SessionError::SlotActive {
                slot,
                pid: info.active_pid,
            });
        }
        self.attempt.slot_confirmed = info.confirmed_flush;
        if let Some(reason) = self.attempt.reset_reason.take() {
            self.reset_to_slot(reason, info.confirmed_flush);
        }
        if self.attempt.export && !self.options.snapshot_existing_slot {
            self.attempt.export = false;
            self.snapshot_done = true;
            self.events.push_back(SessionEvent::SnapshotSkipped {
                slot_confirmed_lsn: info.confirmed_flush,
            });
        }
        if self.attempt.export {
            self.events.push_back(SessionEvent::Warning(format!(
                "dropping replication slot {slot} (confirmed at {}) to recreate it with an \
                 exported snapshot for the initial snapshot",
                info.confirmed_flush
                    .map_or_else(|| "an unknown position".to_owned(), |l| l.to_string())
            )));
            let sql = catalog::drop_slot_command(&slot)?;
            self.send(Step::DropSlot, &sql, now)
        } else {
            self.start_replication(now)
        }
    }

    fn create_slot(&mut self, now: Instant) -> Result<(), SessionError> {
        let version = self.server_version.unwrap_or_default();
        // A bootstrap exports its snapshot from a temporary slot and copies the permanent
        // slot from it when it is complete (PostgreSQL 12+; the copy of two-phase slots
        // loses two_phase before 17): a bootstrap cut short leaves no slot, so the next
        // start bootstraps again.
        let via_temporary = self.attempt.export
            && !self.options.temporary_slot
            && version >= 120_000
            && !self.options.two_phase
            // A copied slot is not a failover slot.
            && !self.options.failover;
        let (name, temporary) = if via_temporary {
            (catalog::bootstrap_slot_name(&self.options.slot_name), true)
        } else {
            (self.options.slot_name.clone(), self.options.temporary_slot)
        };
        self.attempt.bootstrap_slot = via_temporary.then(|| name.clone());
        let sql = create_slot_command(
            &name,
            temporary,
            self.attempt.export,
            self.options.two_phase,
            self.options.failover && !temporary,
            version,
        )?;
        self.send(Step::CreateSlot, &sql, now)
    }

    fn after_create_slot(&mut self, r: &QueryResult, now: Instant) -> Result<(), SessionError> {
        let created = parse_created_slot(r)?;
        let cp = created.consistent_point;
        self.attempt.slot_confirmed = Some(cp);
        let temporary = self.options.temporary_slot || self.attempt.bootstrap_slot.is_some();
        let slot_name = if created.slot_name.is_empty() {
            self.attempt
                .bootstrap_slot
                .clone()
                .unwrap_or_else(|| self.options.slot_name.clone())
        } else {
            created.slot_name
        };
        self.events.push_back(SessionEvent::SlotCreated {
            slot_name,
            consistent_point: cp,
            snapshot_name: created.snapshot_name.clone(),
            temporary,
        });
        if !self.attempt.export {
            return self.start_replication(now);
        }
        let Some(snapshot_name) = created.snapshot_name else {
            return Err(SessionError::Protocol(
                "CREATE_REPLICATION_SLOT with an exported snapshot returned no snapshot name"
                    .to_owned(),
            ));
        };
        self.attempt.held_consistent_point = Some(cp);
        self.step = Step::Idle;
        self.phase = Phase::SnapshotHeld;
        self.events.push_back(SessionEvent::SnapshotHeld {
            snapshot_name,
            consistent_point: cp,
        });
        Ok(())
    }

    /// Sends START_REPLICATION from the resume position.
    pub(super) fn start_replication(&mut self, now: Instant) -> Result<(), SessionError> {
        let requested = self.feedback.resume_lsn();
        self.attempt.requested = requested;
        if let Some(confirmed) = self.attempt.slot_confirmed
            && !requested.is_zero()
            && confirmed > requested
        {
            self.events.push_back(SessionEvent::ResumeGap {
                requested,
                server_start: confirmed,
            });
        }
        let sql = start_replication_command(
            &self.options.slot_name,
            requested,
            &self.attempt.start_options,
        )?;
        self.send(Step::StartReplication, &sql, now)
    }
}

/// The configured tables not in `found`, as `schema.table`.
fn missing_tables(wanted: &[TableName], found: &[TableName]) -> Vec<String> {
    wanted
        .iter()
        .filter(|t| !found.contains(t))
        .map(ToString::to_string)
        .collect()
}

fn display_tables(tables: &[TableName]) -> String {
    tables
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
