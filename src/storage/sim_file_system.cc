#include "storage/sim_file_system.h"

#include <fmt/format.h>

#include <algorithm>

namespace cairn {

// --- Handles --------------------------------------------------------------------------------

class SimFileSystem::SimWritableFile final : public WritableFile {
 public:
  SimWritableFile(SimFileSystem* fs, std::string path, std::shared_ptr<Inode> inode)
      : fs_(fs), path_(std::move(path)), inode_(std::move(inode)), epoch_(fs->epoch_) {}

  Status Append(std::string_view data) override { return WriteAt(inode_->data.size(), data); }

  Status WriteAt(uint64_t offset, std::string_view data) override {
    CAIRN_TRY(CheckHandle());
    CAIRN_CHECK(offset <= inode_->data.size(), "a write leaves no hole ({} > {} in {})", offset,
                inode_->data.size(), path_);
    bool torn = false;
    CAIRN_TRY(fs_->BeginMutation(&torn));
    size_t count = data.size();
    Status status;
    if (torn) {
      std::uniform_int_distribution<size_t> cut(0, data.size());
      count = cut(fs_->random_);
      status = Status::IoError(fmt::format("write {}: simulated crash", path_));
    } else if (fs_->space_limit_bytes_) {
      // Only bytes past the end take space; overwritten ones already have theirs.
      const uint64_t used = fs_->TotalBytes();
      const uint64_t available = used >= *fs_->space_limit_bytes_ ? 0 : *fs_->space_limit_bytes_ - used;
      const uint64_t growth =
          offset + data.size() > inode_->data.size() ? offset + data.size() - inode_->data.size() : 0;
      if (growth > available) {
        count = inode_->data.size() - offset + available;
        status = Status::NoSpace(fmt::format("write {}: No space left on device", path_));
      }
    }
    if (offset + count > inode_->data.size()) inode_->data.resize(offset + count);
    inode_->data.replace(offset, count, data.substr(0, count));
    return status;
  }

  Status Sync() override {
    CAIRN_TRY(CheckHandle());
    bool torn = false;
    CAIRN_TRY(fs_->BeginMutation(&torn));
    if (torn) {
      // The process died during fdatasync: the data may or may not have reached the disk.
      if (fs_->random_() % 2 == 0) inode_->durable_data = inode_->data;
      return Status::IoError(fmt::format("fdatasync {}: simulated crash", path_));
    }
    if (fs_->fail_syncs_) {
      return Status::IoError(fmt::format("fdatasync {}: Input/output error", path_));
    }
    inode_->durable_data = inode_->data;
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    CAIRN_TRY(CheckHandle());
    CAIRN_CHECK(size <= inode_->data.size(), "truncate never grows a file ({} > {})", size,
                inode_->data.size());
    bool torn = false;
    CAIRN_TRY(fs_->BeginMutation(&torn));
    if (torn) {
      if (fs_->random_() % 2 == 0) inode_->data.resize(size);
      return Status::IoError(fmt::format("ftruncate {}: simulated crash", path_));
    }
    inode_->data.resize(size);
    return Status::Ok();
  }

  uint64_t Size() const override { return inode_->data.size(); }

  Status Close() override { return Status::Ok(); }

 private:
  Status CheckHandle() const {
    CAIRN_TRY(fs_->CheckAlive());
    if (epoch_ != fs_->epoch_) {
      return Status::IoError(fmt::format("{}: handle opened before a simulated crash", path_));
    }
    return Status::Ok();
  }

  SimFileSystem* fs_;
  std::string path_;
  std::shared_ptr<Inode> inode_;
  uint64_t epoch_;
};

class SimFileSystem::SimReadableFile final : public ReadableFile {
 public:
  SimReadableFile(const SimFileSystem* fs, std::string path, std::shared_ptr<Inode> inode)
      : fs_(fs), path_(std::move(path)), inode_(std::move(inode)), epoch_(fs->epoch_) {}

  Result<size_t> ReadAt(uint64_t offset, size_t size, char* destination) const override {
    CAIRN_TRY(CheckHandle());
    if (offset >= inode_->data.size()) return size_t{0};
    const size_t count = std::min<uint64_t>(size, inode_->data.size() - offset);
    std::copy_n(inode_->data.data() + offset, count, destination);
    return count;
  }

  Result<uint64_t> Size() const override {
    CAIRN_TRY(CheckHandle());
    return static_cast<uint64_t>(inode_->data.size());
  }

 private:
  Status CheckHandle() const {
    CAIRN_TRY(fs_->CheckAlive());
    if (epoch_ != fs_->epoch_) {
      return Status::IoError(fmt::format("{}: handle opened before a simulated crash", path_));
    }
    return Status::Ok();
  }

  const SimFileSystem* fs_;
  std::string path_;
  std::shared_ptr<Inode> inode_;
  uint64_t epoch_;
};

// --- File system ------------------------------------------------------------------------------

std::string SimFileSystem::ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status SimFileSystem::CheckAlive() const {
  if (dead_) return Status::IoError("simulated crash: the process is dead");
  return Status::Ok();
}

Status SimFileSystem::CheckPermission(const std::string& path, std::string_view operation) const {
  for (const std::string& prefix : denied_prefixes_) {
    if (path.compare(0, prefix.size(), prefix) == 0) {
      return Status::PermissionDenied(fmt::format("{} {}: Permission denied", operation, path));
    }
  }
  return Status::Ok();
}

Status SimFileSystem::BeginMutation(bool* torn) {
  CAIRN_TRY(CheckAlive());
  ++mutating_operations_;
  *torn = false;
  if (crash_at_operation_ && mutating_operations_ >= *crash_at_operation_) {
    dead_ = true;
    crash_at_operation_.reset();
    *torn = true;
  }
  return Status::Ok();
}

uint64_t SimFileSystem::TotalBytes() const {
  uint64_t total = 0;
  for (const auto& [name, inode] : names_) total += inode->data.size();
  return total;
}

void SimFileSystem::SetCrashPoint(uint64_t operations) {
  CAIRN_CHECK(operations > 0, "a crash point lies in the future");
  crash_at_operation_ = mutating_operations_ + operations;
}

Result<std::unique_ptr<WritableFile>> SimFileSystem::OpenWritable(const std::string& path,
                                                                 OpenMode mode) {
  CAIRN_TRY(CheckAlive());
  CAIRN_TRY(CheckPermission(path, "open"));
  if (directories_.count(ParentOf(path)) == 0) {
    return Status::NotFound(fmt::format("open {}: No such file or directory", path));
  }
  auto existing = names_.find(path);
  if (mode == OpenMode::kAppendExisting) {
    if (existing == names_.end()) {
      return Status::NotFound(fmt::format("open {}: No such file or directory", path));
    }
    return std::unique_ptr<WritableFile>(new SimWritableFile(this, path, existing->second));
  }
  if (existing != names_.end() && mode == OpenMode::kCreateNew) {
    return Status::AlreadyExists(fmt::format("open {}: File exists", path));
  }
  bool torn = false;
  CAIRN_TRY(BeginMutation(&torn));
  if (torn) return Status::IoError(fmt::format("open {}: simulated crash", path));
  if (existing != names_.end()) {
    existing->second->data.clear();
    return std::unique_ptr<WritableFile>(new SimWritableFile(this, path, existing->second));
  }
  auto inode = std::make_shared<Inode>();
  names_[path] = inode;
  return std::unique_ptr<WritableFile>(new SimWritableFile(this, path, std::move(inode)));
}

Result<std::unique_ptr<ReadableFile>> SimFileSystem::OpenReadable(const std::string& path) {
  CAIRN_TRY(CheckAlive());
  CAIRN_TRY(CheckPermission(path, "open"));
  auto found = names_.find(path);
  if (found == names_.end()) {
    return Status::NotFound(fmt::format("open {}: No such file or directory", path));
  }
  return std::unique_ptr<ReadableFile>(new SimReadableFile(this, path, found->second));
}

Result<std::vector<std::string>> SimFileSystem::ListDirectory(const std::string& directory) {
  CAIRN_TRY(CheckAlive());
  CAIRN_TRY(CheckPermission(directory, "opendir"));
  if (directories_.count(directory) == 0) {
    return Status::NotFound(fmt::format("opendir {}: No such file or directory", directory));
  }
  std::vector<std::string> names;
  auto base_name = [&](const std::string& path) {
    return path.substr(directory == "/" ? 1 : directory.size() + 1);
  };
  for (const auto& [path, inode] : names_) {
    if (ParentOf(path) == directory) names.push_back(base_name(path));
  }
  for (const std::string& path : directories_) {
    if (path != directory && !path.empty() && path != "/" && ParentOf(path) == directory) {
      names.push_back(base_name(path));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<FileKind> SimFileSystem::Stat(const std::string& path) {
  CAIRN_TRY(CheckAlive());
  if (directories_.count(path) != 0) return FileKind::kDirectory;
  if (names_.count(path) != 0) return FileKind::kFile;
  return FileKind::kMissing;
}

Status SimFileSystem::CreateDirectory(const std::string& path) {
  CAIRN_TRY(CheckAlive());
  CAIRN_TRY(CheckPermission(path, "mkdir"));
  if (directories_.count(path) != 0) return Status::Ok();
  if (names_.count(path) != 0) {
    return Status::AlreadyExists(fmt::format("mkdir {}: exists and is not a directory", path));
  }
  if (directories_.count(ParentOf(path)) == 0) {
    return Status::NotFound(fmt::format("mkdir {}: No such file or directory", path));
  }
  directories_.insert(path);
  return Status::Ok();
}

Status SimFileSystem::SyncDirectory(const std::string& directory) {
  bool torn = false;
  CAIRN_TRY(BeginMutation(&torn));
  if (fail_syncs_ && !torn) {
    return Status::IoError(fmt::format("fsync {}: Input/output error", directory));
  }
  if (torn && random_() % 2 == 0) {
    return Status::IoError(fmt::format("fsync {}: simulated crash", directory));
  }
  for (auto it = durable_names_.begin(); it != durable_names_.end();) {
    if (ParentOf(it->first) == directory && names_.count(it->first) == 0) {
      it = durable_names_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [path, inode] : names_) {
    if (ParentOf(path) == directory) durable_names_[path] = inode;
  }
  if (torn) return Status::IoError(fmt::format("fsync {}: simulated crash", directory));
  return Status::Ok();
}

Status SimFileSystem::Rename(const std::string& from, const std::string& to) {
  CAIRN_TRY(CheckAlive());
  CAIRN_TRY(CheckPermission(to, "rename"));
  auto found = names_.find(from);
  if (found == names_.end()) {
    return Status::NotFound(fmt::format("rename {} -> {}: No such file or directory", from, to));
  }
  bool torn = false;
  CAIRN_TRY(BeginMutation(&torn));
  if (torn && random_() % 2 == 0) {
    return Status::IoError(fmt::format("rename {}: simulated crash", from));
  }
  std::shared_ptr<Inode> inode = found->second;
  names_.erase(found);
  names_[to] = std::move(inode);
  if (torn) return Status::IoError(fmt::format("rename {}: simulated crash", from));
  return Status::Ok();
}

Status SimFileSystem::RemoveFile(const std::string& path) {
  CAIRN_TRY(CheckAlive());
  CAIRN_TRY(CheckPermission(path, "unlink"));
  if (names_.count(path) == 0) {
    return Status::NotFound(fmt::format("unlink {}: No such file or directory", path));
  }
  bool torn = false;
  CAIRN_TRY(BeginMutation(&torn));
  if (torn && random_() % 2 == 0) {
    return Status::IoError(fmt::format("unlink {}: simulated crash", path));
  }
  names_.erase(path);
  if (torn) return Status::IoError(fmt::format("unlink {}: simulated crash", path));
  return Status::Ok();
}

std::string SimFileSystem::TornTail(const std::string& durable, const std::string& current,
                                    TearMode tear) {
  const bool only_appended = current.size() >= durable.size() &&
                             current.compare(0, durable.size(), durable) == 0;
  if (!only_appended && current.size() < durable.size() && random_() % 2 == 0) {
    return durable;  // The truncation never reached the disk, nor anything after it.
  }
  // What was durable, as long as the file now is; then the sectors written over since the last
  // sync, each reaching the disk or not on its own (writeback keeps no order among them). A
  // sector that holds the durable end and bytes past it goes with those (below), whole.
  std::string base = durable.substr(0, std::min(durable.size(), current.size()));
  const size_t aligned_end = base.size() / kSectorBytes * kSectorBytes;
  const size_t mixed_end = current.size() > base.size() ? aligned_end : base.size();
  if (!only_appended && tear != TearMode::kNone) {
    for (size_t sector = 0; sector < mixed_end; sector += kSectorBytes) {
      const size_t length = std::min<size_t>(kSectorBytes, mixed_end - sector);
      if (base.compare(sector, length, current, sector, length) != 0 && random_() % 2 == 0) {
        base.replace(sector, length, current, sector, length);
      }
    }
  }
  // Bytes past the durable length: a prefix of them survives, by the tear mode. When some do,
  // the sector they start in is the new one from its start.
  const size_t kept_from = base.size();
  if (tear == TearMode::kNone || current.size() <= kept_from) return base;
  auto with_tail = [&](size_t cut) {
    if (cut == kept_from) return base;
    return base.substr(0, aligned_end) + current.substr(aligned_end, cut - aligned_end);
  };
  auto pick_sector_cut = [&] {
    std::vector<size_t> cuts = {kept_from};
    for (size_t cut = (kept_from / kSectorBytes + 1) * kSectorBytes; cut < current.size();
         cut += kSectorBytes) {
      cuts.push_back(cut);
    }
    cuts.push_back(current.size());
    return cuts[random_() % cuts.size()];
  };
  switch (tear) {
    case TearMode::kNone:
      return base;
    case TearMode::kSectorPrefix:
      return with_tail(pick_sector_cut());
    case TearMode::kAnyByte:
      return with_tail(kept_from + random_() % (current.size() - kept_from + 1));
    case TearMode::kZeroFill: {
      const size_t cut = pick_sector_cut();
      return with_tail(cut) + std::string(current.size() - cut, '\0');
    }
  }
  return base;
}

void SimFileSystem::Crash(TearMode tear) {
  ++epoch_;
  dead_ = false;
  crash_at_operation_.reset();
  std::map<std::string, std::shared_ptr<Inode>> survivors;
  for (const auto& [path, inode] : durable_names_) {
    auto survivor = std::make_shared<Inode>();
    survivor->data = TornTail(inode->durable_data, inode->data, tear);
    survivor->durable_data = survivor->data;
    survivors[path] = std::move(survivor);
  }
  names_ = survivors;
  durable_names_ = std::move(survivors);
}

void SimFileSystem::FlipBit(const std::string& path, uint64_t offset, int bit) {
  auto found = names_.find(path);
  CAIRN_CHECK(found != names_.end(), "FlipBit names an existing file ({})", path);
  Inode& inode = *found->second;
  CAIRN_CHECK(offset < inode.data.size(), "FlipBit offset {} lies inside {}", offset, path);
  inode.data[offset] = static_cast<char>(inode.data[offset] ^ (1 << bit));
  if (offset < inode.durable_data.size()) {
    inode.durable_data[offset] = static_cast<char>(inode.durable_data[offset] ^ (1 << bit));
  }
}

std::string SimFileSystem::RawContents(const std::string& path) const {
  auto found = names_.find(path);
  CAIRN_CHECK(found != names_.end(), "RawContents names an existing file ({})", path);
  return found->second->data;
}

void SimFileSystem::SetRawContents(const std::string& path, std::string contents) {
  auto& inode = names_[path];
  if (!inode) inode = std::make_shared<Inode>();
  inode->data = contents;
  inode->durable_data = std::move(contents);
  durable_names_[path] = inode;
}

}  // namespace cairn
