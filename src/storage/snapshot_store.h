// SnapshotStore: durable snapshots of the state machine, the newest few kept.
//
// A snapshot is the applied state at a log index and the generation of that entry. Once one is
// durable, the log below it is no longer needed to rebuild state, which is what lets the
// Low-Water Mark (wal/low_water_mark.h) delete old segments.
//
// On disk (docs/data-directory.md): files "<index 20 digits>-<generation 20 digits>.snap" in the
// snapshot directory, each a 48-byte header (magic, version, index, generation, data length, data
// checksum, header checksum) and the data. Save writes "<name>.tmp", fdatasyncs it, renames it into
// place and fsyncs the directory, so a crash leaves no half snapshot under a real name; Open deletes
// leftover .tmp files. After a save only the newest `retained_snapshots` are kept.
//
// LoadNewest returns the newest snapshot that passes its checksums; a damaged newer one is logged
// and skipped. The caller must then check that its log still reaches back to the snapshot it got
// (log first index <= snapshot index + 1) and refuse to start otherwise.
//
// Not thread-safe; one owner.
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/strong_types.h"
#include "storage/file_system.h"

namespace cairn {

struct SnapshotMeta {
  LogIndex index;
  Generation generation;

  bool operator==(const SnapshotMeta&) const = default;
};

struct Snapshot {
  SnapshotMeta meta;
  std::string data;
};

// A stored snapshot opened for reading in place (its checksums not yet verified): the data is
// `data_length` bytes at `data_offset` of `file`. The open file stays readable after a later
// save prunes it.
struct SnapshotFile {
  std::unique_ptr<ReadableFile> file;
  std::string path;
  uint64_t data_offset = 0;
  uint64_t data_length = 0;
  uint32_t data_crc = 0;
};

struct SnapshotOptions {
  // How many snapshots stay on disk after a save (at least 1).
  uint32_t retained_snapshots = 3;
  // The largest snapshot Load accepts; a header claiming more is treated as damage.
  uint64_t snapshot_bytes_max = 8ull << 30;
  // Save writes each slice of this many bytes back to the device before the next (see
  // WriteFileDurably); 0: all at once. Either way one fdatasync at the end makes it durable.
  uint64_t write_back_every_bytes = 256ull << 10;
};

class SnapshotStore {
 public:
  static Result<std::unique_ptr<SnapshotStore>> Open(FileSystem& fs, std::string directory,
                                                     SnapshotOptions options = {});

  // Durably stores a snapshot, then prunes to the newest `retained_snapshots`. The data may come
  // in (at most two) pieces, stored one after the other without joining them in memory.
  Status Save(const SnapshotMeta& meta, std::initializer_list<std::string_view> data);
  Status Save(const SnapshotMeta& meta, std::string_view data) { return Save(meta, {data}); }
  // Save in two steps: WriteTemporary writes and syncs "<name>.tmp" (the slow part; touches no
  // other file, so it may run beside other calls for other snapshots), Publish renames it into
  // place, syncs the directory and prunes.
  Status WriteTemporary(const SnapshotMeta& meta, std::initializer_list<std::string_view> data);
  Status Publish(const SnapshotMeta& meta);
  // Opens a stored snapshot, checking its header but not its data (Load checks both).
  Result<SnapshotFile> OpenStored(const SnapshotMeta& meta);
  // The newest snapshot whose checksums pass, or nullopt when there is none.
  Result<std::optional<Snapshot>> LoadNewest();
  // Every snapshot file present, oldest first (not verified).
  Result<std::vector<SnapshotMeta>> List();

  static std::string FileName(const SnapshotMeta& meta);

 private:
  SnapshotStore(FileSystem& fs, std::string directory, SnapshotOptions options)
      : fs_(fs), directory_(std::move(directory)), options_(options) {}
  Result<Snapshot> Load(const SnapshotMeta& meta);

  FileSystem& fs_;
  std::string directory_;
  SnapshotOptions options_;
};

}  // namespace cairn
