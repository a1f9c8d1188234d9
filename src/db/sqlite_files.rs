//! Writing a SQLite database's files out to disk through SQLite's own descriptors.
//!
//! Never open and close a database file (or its WAL) with `std::fs` while SQLite has it open:
//! closing any descriptor of a file drops every POSIX lock this process holds on it, SQLite's
//! included ("How To Corrupt An SQLite Database File", section 2.2). Another process then
//! believes it is the last connection, checkpoints and deletes the WAL the server still writes.
//! SQLite's own unix VFS keeps a descriptor open while the process holds locks on the file, so
//! syncing through the files of a connection of its own is safe. diesel does not hand out its
//! connection's raw handle, hence this small connection of our own.

use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;

/// A SQLite connection kept only for its open files: the database file and its WAL.
pub struct SqliteFiles {
    db: NonNull<ffi::sqlite3>,
}

// SAFETY: the bundled SQLite is built thread-safe (SQLITE_THREADSAFE=1), so a connection may
// move between threads; `&mut self` on every use keeps it to one thread at a time.
unsafe impl Send for SqliteFiles {}

impl SqliteFiles {
    /// Opens the existing database at `path` and reads from it once, which opens its WAL;
    /// while this lives the WAL stays open and in place (SQLite deletes it only when the last
    /// connection closes).
    pub fn open(path: &str, busy_timeout_ms: u32) -> Result<Self, String> {
        let c_path = CString::new(path).map_err(|_| format!("{path}: the path holds a NUL"))?;
        let mut raw = ptr::null_mut();
        // SAFETY: a valid C string and an out pointer; no VFS name (the default one).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                c_path.as_ptr(),
                &mut raw,
                ffi::SQLITE_OPEN_READWRITE,
                ptr::null(),
            )
        };
        let Some(db) = NonNull::new(raw) else {
            return Err(format!("{path}: SQLite could not allocate a connection"));
        };
        // Dropped on every error below: SQLite wants a failed open closed too.
        let files = SqliteFiles { db };
        if rc != ffi::SQLITE_OK {
            return Err(files.error(path));
        }
        let timeout = c_int::try_from(busy_timeout_ms).unwrap_or(c_int::MAX);
        // SAFETY: an open connection and a valid C string; no callback.
        let rc = unsafe {
            ffi::sqlite3_busy_timeout(db.as_ptr(), timeout);
            ffi::sqlite3_exec(
                db.as_ptr(),
                c"SELECT count(*) FROM sqlite_schema".as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(files.error(path));
        }
        Ok(files)
    }

    /// Writes the database file's and the WAL's pages out to disk (fdatasync), through the
    /// descriptors SQLite holds.
    pub fn sync(&mut self) -> Result<(), String> {
        for (op, name) in [
            (ffi::SQLITE_FCNTL_FILE_POINTER, "database file"),
            (ffi::SQLITE_FCNTL_JOURNAL_POINTER, "WAL"),
        ] {
            let mut file: *mut ffi::sqlite3_file = ptr::null_mut();
            // SAFETY: both opcodes write one `sqlite3_file *` into the pointer they are given.
            let rc = unsafe {
                ffi::sqlite3_file_control(
                    self.db.as_ptr(),
                    c"main".as_ptr(),
                    op,
                    (&mut file as *mut *mut ffi::sqlite3_file).cast::<c_void>(),
                )
            };
            if rc != ffi::SQLITE_OK || file.is_null() {
                return Err(format!("SQLite did not hand out its {name} ({rc})"));
            }
            // SAFETY: the file belongs to this connection, which is open; a file that is not
            // open (no WAL yet) has no methods.
            let rc = unsafe {
                match (*file).pMethods.as_ref().and_then(|methods| methods.xSync) {
                    Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL | ffi::SQLITE_SYNC_DATAONLY),
                    None => ffi::SQLITE_OK,
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(format!("cannot sync the {name} (SQLite error {rc})"));
            }
        }
        Ok(())
    }

    fn error(&self, path: &str) -> String {
        // SAFETY: SQLite returns a C string it owns, valid until the next call on `db`.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) };
        format!("{path}: {}", message.to_string_lossy())
    }
}

impl Drop for SqliteFiles {
    fn drop(&mut self) {
        // SAFETY: the connection has no statements left (sqlite3_exec finalises its own), and
        // SQLite itself keeps descriptors that still carry locks open past this close.
        unsafe {
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};

    #[test]
    fn syncs_through_sqlite_and_leaves_the_wal_to_the_connections() {
        let dir = std::env::temp_dir().join(format!("undersign-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("files.db").display().to_string();
        let mut writer = SqliteConnection::establish(&path).unwrap();
        writer
            .batch_execute(
                "PRAGMA journal_mode = WAL; CREATE TABLE rows (key BLOB); \
                 INSERT INTO rows VALUES (randomblob(64));",
            )
            .unwrap();
        let mut files = SqliteFiles::open(&path, 1_000).unwrap();
        files.sync().unwrap();
        writer
            .batch_execute("INSERT INTO rows VALUES (randomblob(64))")
            .unwrap();
        files.sync().unwrap();
        drop(files);
        // The writer still has the database open: its WAL stays.
        assert!(std::path::Path::new(&format!("{path}-wal")).exists());
        drop(writer);
        assert!(SqliteFiles::open(&dir.join("absent.db").display().to_string(), 1_000).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
