// FileSystem: the only way Cairn touches files.
//
// Design note. Storage code (the write-ahead log, snapshots, the metadata record) never calls the
// operating system directly. It goes through this small interface, which has two implementations:
//   - PosixFileSystem (posix_file_system.h), the real one: open/pwrite/fdatasync/rename/fsync(dir);
//   - SimFileSystem (sim_file_system.h), in memory, for tests and the deterministic simulator. It
//     keeps what was synced apart from what was merely written, so a simulated crash loses the
//     unsynced part, may tear the last write, and can inject ENOSPC, EACCES and fsync failures.
//
// The interface is deliberately narrow: files are appended to and read at offsets, and durability
// is explicit. The one exception to append-only is WriteAt, for the write-ahead log's preallocated
// segments: it overwrites bytes already in the file (zeros put there and synced ahead of time),
// which lets an fdatasync skip the journal commit a growing file needs. Overwritten bytes that were
// not synced may come back after a crash as the old bytes, sector by sector in any mix. A file's data is durable after WritableFile::Sync returns
// OK; its *name* (creation, rename, removal) is durable after FileSystem::SyncDir on its directory
// returns OK. Paths are plain strings joined with '/'.
//
// Thread safety: a WritableFile is used by one thread at a time. PosixFileSystem is safe to share;
// SimFileSystem is single-threaded like the simulator that owns it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cairn {

class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Appends `data` at the end of the file. On failure any prefix of `data` may have reached the
  // file; the caller decides whether to Truncate it away. Not durable until Sync.
  virtual Status Append(std::string_view data) = 0;
  // Writes `data` at `offset` (at most Size()), over bytes already there and past the end as
  // needed. On failure any part of `data` may have reached the file. Not durable until Sync; after
  // a crash, each 512-byte sector it changed holds either its old or its new bytes.
  virtual Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // Makes the file's data durable (fdatasync). A failure here is final for the caller's purposes:
  // the kernel may have dropped the dirty pages, so retrying could report success for lost data.
  virtual Status Sync() = 0;
  // Writes the file's dirty pages to the device and waits for them, without the device cache
  // flush Sync costs and without any durability promise (sync_file_range). A pacing aid for
  // large background writes; a no-op where there is nothing to pace.
  virtual Status WriteBack() { return Status::Ok(); }
  // Cuts the file to `size` bytes (which must not exceed Size()); later appends go after it.
  virtual Status Truncate(uint64_t size) = 0;
  // Bytes in the file, including appended but unsynced ones.
  virtual uint64_t Size() const = 0;
  virtual Status Close() = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `size` bytes at `offset` into `destination`; returns how many were read, fewer
  // only at the end of the file.
  virtual Result<size_t> ReadAt(uint64_t offset, size_t size, char* destination) const = 0;
  virtual Result<uint64_t> Size() const = 0;
};

enum class OpenMode : uint8_t {
  kCreateNew,       // Create; fail with AlreadyExists if the name exists.
  kCreateOrTruncate,  // Create, or empty an existing file.
  kAppendExisting,  // Open an existing file to append after its current end.
};

enum class FileKind : uint8_t { kMissing, kFile, kDirectory };

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                             OpenMode mode) = 0;
  virtual Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) = 0;
  // Names (not paths) of the entries in `directory`, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> ListDirectory(const std::string& directory) = 0;
  virtual Result<FileKind> Stat(const std::string& path) = 0;
  // Creates one directory; OK if it already exists as a directory.
  virtual Status CreateDirectory(const std::string& path) = 0;
  // Makes creations, renames and removals of names in `directory` durable (fsync on the directory).
  virtual Status SyncDirectory(const std::string& directory) = 0;
  // Atomically replaces `to` with `from` (rename(2)).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
};

// "dir" + "/" + "name".
std::string JoinPath(std::string_view directory, std::string_view name);

// Creates `path` and any missing parent directories (like mkdir -p).
Status CreateDirectories(FileSystem& fs, const std::string& path);

// Reads a whole file (for small files: metadata, snapshots).
Result<std::string> ReadWholeFile(FileSystem& fs, const std::string& path);

// Replaces `directory/name` with `contents` so that a crash leaves either the old file or the new
// one, never a mix: write `name.tmp`, fsync it, rename over `name`, fsync the directory.
Status WriteFileAtomically(FileSystem& fs, const std::string& directory, const std::string& name,
                           std::string_view contents);
// Writes `path` (created or truncated) from `pieces`, one after the other (no joined copy), and
// fdatasyncs it; the caller renames it into place. With `write_back_every_bytes`, each such slice
// is also written back to the device and waited for (WritableFile::WriteBack, no cache flush and
// no journal commit) before the next is written: a large file then never has more than one slice
// queued at the device, so the write-ahead log's fdatasyncs meanwhile wait behind at most that
// much, and the one fdatasync at the end has little left to write.
Status WriteFileDurably(FileSystem& fs, const std::string& path,
                        std::initializer_list<std::string_view> pieces,
                        uint64_t write_back_every_bytes = 0);



}  // namespace cairn
