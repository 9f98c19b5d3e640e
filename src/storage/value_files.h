// ValueFiles: the files behind the MVCC store's value log (mvcc/value_log.h) in a server.
//
// Design note. Each store's ValueStorage keeps a segment per file, "<instance>-<segment>.values"
// in <data-dir>/values/, appended to and read at offsets through FileSystem (pwrite and pread
// through the page cache with PosixFileSystem; a reader opens the files again): the
// value bytes are not in the server's heap, and the kernel keeps the hot ones cached and can evict
// the rest under memory pressure. Nothing is synced: the write-ahead log and snapshots are the
// record, and the store is rebuilt from them at start, so Open clears the directory of an earlier
// process's files. A storage deletes its files when its store is destroyed (a store replaced by a
// leader's snapshot goes with its files).
//
// A failed write or read of these files (a full disk, an I/O error) crashes the server with the
// error: the store cannot answer without its values, and a restart rebuilds them from the log.
//
// Thread-safety: NewStorage is thread-safe; each storage is used by its store's thread, a reader
// by one thread at a time (with SimFileSystem, all on the simulator's thread).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "base/status.h"
#include "mvcc/value_log.h"
#include "storage/file_system.h"

namespace cairn {

class ValueFiles {
 public:
  // Creates `directory` if missing and removes the files an earlier process left in it.
  // `fs` outlives every storage made here.
  static Result<std::shared_ptr<ValueFiles>> Open(FileSystem& fs, const std::string& directory);

  // A storage of its own for one store.
  std::unique_ptr<mvcc::ValueStorage> NewStorage();

  const std::string& directory() const { return directory_; }

 private:
  ValueFiles(FileSystem& fs, std::string directory) : fs_(fs), directory_(std::move(directory)) {}
  FileSystem& fs_;
  std::string directory_;
  // Process-wide, so two ValueFiles on one directory (a member reopened in a test) never name
  // the same file.
  static std::atomic<uint64_t> next_instance_;
};

}  // namespace cairn
