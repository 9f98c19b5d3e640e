// SimFileSystem: an in-memory FileSystem that fails the way real disks and kernels do.
//
// Design note. The write-ahead log's crash rules are only as good as the crashes they were tested
// against. This file system keeps, for every file, the bytes written so far and the bytes that were
// durable at its last Sync; and for every directory, the names as they are now and as they were at
// its last SyncDirectory. A simulated crash (Crash) throws away everything that was not made durable:
//   - names created, renamed or removed since their directory's last sync revert;
//   - a file's unsynced appended bytes are lost, except that the crash may tear them: keep a prefix
//     cut at a 512-byte sector boundary (kSectorPrefix), at any byte (kAnyByte), or keep the file's
//     new length with the unsynced sectors read back as zeros (kZeroFill: the size reached the
//     journal, the data never reached the platter);
//   - bytes overwritten in place (WriteAt) since the last sync: under any tear mode but kNone each
//     512-byte sector they touched keeps its new bytes or reverts to its durable ones, on its own
//     (writeback does not write a file's pages in order), so a crash can leave holes of old bytes
//     between new ones; under kNone every one reverts;
//   - a truncation that was not synced may or may not have happened.
// Directories themselves are treated as durable once created (Cairn creates them once, at start).
//
// Faults a test can inject: a space limit (appends fail with NoSpace after writing the part that
// fits, like write(2) on a full disk), failing syncs, permission denied under a path prefix, a bit
// flip in stored data, and a crash point: after N mutating operations the "process" dies, the Nth
// write landing torn, and every later call fails until Crash() restarts it.
//
// Everything is deterministic given the seed. Not thread-safe: the simulator is single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "storage/file_system.h"

namespace cairn {

enum class TearMode : uint8_t {
  kNone,          // Unsynced appends vanish entirely.
  kSectorPrefix,  // A prefix of the unsynced bytes survives, cut at a 512-byte sector boundary.
  kAnyByte,       // A prefix of the unsynced bytes survives, cut at any byte.
  kZeroFill,      // The file keeps its new length; unsynced sectors after a random one are zeros.
  // Under every mode but kNone, overwritten sectors survive or revert one by one (design note).
};

class SimFileSystem final : public FileSystem {
 public:
  static constexpr uint64_t kSectorBytes = 512;

  explicit SimFileSystem(uint64_t seed) : random_(seed) {}

  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                     OpenMode mode) override;
  Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) override;
  Result<std::vector<std::string>> ListDirectory(const std::string& directory) override;
  Result<FileKind> Stat(const std::string& path) override;
  Status CreateDirectory(const std::string& path) override;
  Status SyncDirectory(const std::string& directory) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;

  // --- Faults ---------------------------------------------------------------------------------
  // Total bytes all files may hold; appends beyond it write what fits and fail with NoSpace.
  void SetSpaceLimitBytes(std::optional<uint64_t> limit) { space_limit_bytes_ = limit; }
  // While set, every Sync and SyncDirectory fails with IoError and makes nothing durable.
  void SetFailSyncs(bool fail) { fail_syncs_ = fail; }
  // Every open, create, list or remove of a path starting with `prefix` fails with
  // PermissionDenied.
  void DenyPermission(std::string prefix) { denied_prefixes_.insert(std::move(prefix)); }
  // After `operations` more mutating operations the process dies: the last one lands partly (an
  // append writes a random prefix, a sync or rename may or may not happen), and every call after
  // it fails with IoError until Crash() restarts the process.
  void SetCrashPoint(uint64_t operations);
  // Cancels a crash point that has not been reached.
  void ClearCrashPoint() { crash_at_operation_.reset(); }
  // Simulated power loss and restart: what was not durable is lost (see the design note).
  // Open handles from before the crash fail on every later call.
  void Crash(TearMode tear);
  // Flips one bit of a file, in what is durable and in what is current.
  void FlipBit(const std::string& path, uint64_t offset, int bit);
  // Test helpers that bypass faults: a file's current bytes, or replace them durably.
  std::string RawContents(const std::string& path) const;
  void SetRawContents(const std::string& path, std::string contents);

  // Mutating operations so far (appends, syncs, truncates, creates, renames, removes).
  uint64_t mutating_operations() const { return mutating_operations_; }
  bool dead() const { return dead_; }

 private:
  class SimWritableFile;
  class SimReadableFile;

  // Shared by a name in the current namespace, possibly a name in the durable one, and open
  // handles: that sharing is what a POSIX inode is, so shared ownership is the honest model here.
  struct Inode {
    std::string data;          // What reads see now.
    std::string durable_data;  // What survives a crash without tearing.
  };

  // Counts one mutating operation; returns the status the operation must fail with, if the
  // process is (or just became) dead. `*torn` is set when this operation is the crash point.
  Status BeginMutation(bool* torn);
  Status CheckAlive() const;
  Status CheckPermission(const std::string& path, std::string_view operation) const;
  uint64_t TotalBytes() const;
  std::string TornTail(const std::string& durable, const std::string& current, TearMode tear);
  static std::string ParentOf(const std::string& path);

  std::mt19937_64 random_;
  std::map<std::string, std::shared_ptr<Inode>> names_;
  std::map<std::string, std::shared_ptr<Inode>> durable_names_;
  std::set<std::string> directories_ = {"", "/"};
  std::set<std::string> denied_prefixes_;
  std::optional<uint64_t> space_limit_bytes_;
  bool fail_syncs_ = false;
  std::optional<uint64_t> crash_at_operation_;
  bool dead_ = false;
  uint64_t mutating_operations_ = 0;
  uint64_t epoch_ = 0;  // Incremented by Crash; handles from an older epoch are dead.
};

}  // namespace cairn
