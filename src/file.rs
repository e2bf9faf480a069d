//! Reading the files the crate loads (keys, trust bundles, policies, revocations): regular files
//! only, opened once, checked through the opened handle, read through a bound.

use std::fs::{File, Metadata};
use std::io::Read as _;
use std::path::Path;

use crate::error::{Error, FileProblem};

/// Opens `path` for reading without blocking and checks, on the opened handle, that it is a
/// regular file.
///
/// Symbolic links are followed: what is checked is the file that was opened, so the checks
/// apply to the link's target, which is what is read. On Unix the file is opened with
/// `O_NONBLOCK` and `O_NOCTTY`, so a FIFO without a writer or a terminal device cannot block the
/// open or become the controlling terminal; it is then refused as not regular.
pub(crate) fn open_regular(
    path: &Path,
    what: &'static str,
    action: &'static str,
) -> Result<(File, Metadata), Error> {
    let io = |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(Error::File {
            what,
            path: path.to_owned(),
            problem: FileProblem::NotRegular {
                kind: file_kind(&metadata),
            },
        });
    }
    Ok((file, metadata))
}

fn file_kind(metadata: &Metadata) -> &'static str {
    let t = metadata.file_type();
    if t.is_dir() {
        return "directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            return "FIFO (named pipe)";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
    }
    "special file"
}

/// Reads an opened regular file into `buf` (which should have room for `limit + 1` bytes when
/// it will hold a secret, so that it never reallocates), refusing more than `limit` bytes.
pub(crate) fn read_opened(
    file: File,
    metadata: &Metadata,
    path: &Path,
    what: &'static str,
    action: &'static str,
    limit: usize,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    let too_large = || Error::File {
        what,
        path: path.to_owned(),
        problem: FileProblem::TooLarge { limit },
    };
    if metadata.len() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(too_large());
    }
    // The size may change after the check: the bound is on the bytes actually read.
    file.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(buf)
        .map_err(|source| Error::Io {
            action,
            path: path.to_owned(),
            source,
        })?;
    if buf.len() > limit {
        return Err(too_large());
    }
    Ok(())
}

/// Reads a whole file of at most `limit` bytes, the way this crate reads every file it loads.
///
/// Refused with [`Error::File`]: anything that is not a regular file (a FIFO, socket, device or
/// directory: [`FileProblem::NotRegular`]), and a file larger than `limit`
/// ([`FileProblem::TooLarge`]); the file is opened once, without blocking, and the checks are
/// made on the opened handle, so they apply to what is read. Symbolic links are followed (the
/// target is checked). `what` names the kind of file in messages (`"trust bundle"`). An open or
/// read failure is [`Error::Io`].
pub fn read_regular_file(
    path: impl AsRef<Path>,
    what: &'static str,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let path = path.as_ref();
    let (file, metadata) = open_regular(path, what, "reading")?;
    let mut buf = Vec::new();
    read_opened(file, &metadata, path, what, "reading", limit, &mut buf)?;
    Ok(buf)
}

/// Reads a whole UTF-8 text file of at most `limit` bytes (see [`read_regular_file`]); text that
/// is not UTF-8 is an [`Error::Io`] of kind `InvalidData`.
pub(crate) fn read_text(
    path: &Path,
    what: &'static str,
    action: &'static str,
    limit: usize,
) -> Result<String, Error> {
    let (file, metadata) = open_regular(path, what, action)?;
    let mut buf = Vec::new();
    read_opened(file, &metadata, path, what, action, limit, &mut buf)?;
    String::from_utf8(buf).map_err(|_| Error::Io {
        action,
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}
