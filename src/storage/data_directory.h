// DataDirectory: a member's data directory, and the check that it is Cairn's.
//
// Layout (docs/data-directory.md):
//   <data-dir>/CAIRN   identity marker: "cairn data directory\nformat_version <n>\n"
//   <data-dir>/meta    the durable metadata record (MetadataStore)
//   <data-dir>/wal/    write-ahead log segments (WriteAheadLog)
//   <data-dir>/snap/   snapshots (SnapshotStore)
//   <data-dir>/values/ the MVCC store's value segments (ValueFiles): scratch, rebuilt at start
//
// Open creates a missing or empty directory and writes the marker first, atomically, so that a
// crash during creation leaves either an empty directory or a marked one. It refuses, without
// touching anything, a non-empty directory without the marker (say, an etcd data directory given by
// mistake), and a marker of a newer format version.
#pragma once

#include <string>

#include "base/status.h"
#include "storage/file_system.h"

namespace cairn {

class DataDirectory {
 public:
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr const char* kMarkerName = "CAIRN";

  static Result<DataDirectory> Open(FileSystem& fs, const std::string& path);

  const std::string& path() const { return path_; }
  std::string wal_path() const { return JoinPath(path_, "wal"); }
  std::string snapshot_path() const { return JoinPath(path_, "snap"); }
  std::string values_path() const { return JoinPath(path_, "values"); }
  // Where MetadataStore keeps its record (it lives at the top, beside the marker).
  const std::string& metadata_directory() const { return path_; }
  // True when this Open initialised the directory.
  bool created() const { return created_; }

 private:
  DataDirectory(std::string path, bool created) : path_(std::move(path)), created_(created) {}
  std::string path_;
  bool created_;
};

}  // namespace cairn
