//! Spill files for held transactions: unnamed temporary files in a directory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pgcdc_core::assemble::{SpillFile, SpillStore};

/// Files created by this process, for unique names.
static CREATED: AtomicU64 = AtomicU64::new(0);

/// A [`SpillStore`] of files in one directory, each unlinked as soon as it is created: the
/// space is freed when the transaction is done with it, or when the process ends, however
/// it ends.
#[derive(Debug)]
pub(crate) struct TempFileStore {
    dir: PathBuf,
}

impl TempFileStore {
    /// A store in `dir`, or in the system's temporary directory.
    pub(crate) fn new(dir: Option<&Path>) -> Self {
        TempFileStore {
            dir: dir.map_or_else(std::env::temp_dir, Path::to_path_buf),
        }
    }
}

impl SpillStore for TempFileStore {
    fn create(&mut self) -> io::Result<Box<dyn SpillFile>> {
        loop {
            let n = CREATED.fetch_add(1, Ordering::Relaxed);
            let path = self
                .dir
                .join(format!(".pgcdc-spill-{}-{n}", std::process::id()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    std::fs::remove_file(&path)?;
                    return Ok(Box::new(TempFile { file }));
                }
                // A file of an earlier process with the same id: take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("creating a spill file in {}: {e}", self.dir.display()),
                    ));
                }
            }
        }
    }
}

struct TempFile {
    file: File,
}

impl SpillFile for TempFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::End(0))?;
        self.file.write_all(data)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read(buf)
    }
}

/// Checks that the spill directory exists, for the configuration error to name it.
pub(crate) fn check_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "spill_dir: {} is not a directory; give an existing directory, or leave it unset \
             for the system's temporary directory",
            dir.display()
        )),
        Err(e) => Err(format!(
            "spill_dir: {} cannot be used ({e}); give an existing directory, or leave it unset \
             for the system's temporary directory",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spill_file_reads_back_what_was_appended_and_leaves_no_name() {
        let dir = std::env::temp_dir().join(format!("pgcdc-spill-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = TempFileStore::new(Some(&dir));
        let mut f = store.create().unwrap();
        f.append(b"hello ").unwrap();
        f.append(b"world").unwrap();
        let mut buf = [0u8; 5];
        assert_eq!(f.read_at(6, &mut buf).unwrap(), 5);
        assert_eq!(&buf, b"world");
        assert_eq!(f.read_at(11, &mut buf).unwrap(), 0);
        // Unlinked at once: the directory stays empty.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        drop(f);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let e = check_dir(Path::new("/nonexistent/pgcdc")).unwrap_err();
        assert!(
            e.starts_with("spill_dir: /nonexistent/pgcdc cannot be used"),
            "{e}"
        );
    }
}
