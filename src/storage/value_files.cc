#include "storage/value_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "base/check.h"
#include "storage/file_system.h"
#include "storage/posix_file_system.h"

namespace cairn {
namespace {

constexpr std::string_view kValueFileSuffix = ".values";

void PreadAll(int fd, uint64_t offset, size_t size, char* out, const std::string& what) {
  size_t done = 0;
  while (done < size) {
    const ssize_t result = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (result < 0 && errno == EINTR) continue;
    CAIRN_CHECK(result > 0, "value log: read of {} failed: {}", what,
                result < 0 ? std::strerror(errno) : "short file");
    done += static_cast<size_t>(result);
  }
}

// Its own descriptors (dup) of the files as they were: a file removed meanwhile stays readable.
class FileValueReader final : public mvcc::ValueReader {
 public:
  explicit FileValueReader(std::string directory) : directory_(std::move(directory)) {}
  ~FileValueReader() override {
    for (const auto& [segment, fd] : fds_) ::close(fd);
  }
  void Add(uint32_t segment, int fd) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    CAIRN_CHECK(copy >= 0, "value log: cannot duplicate a descriptor of {}: {}", directory_,
                std::strerror(errno));
    fds_.emplace(segment, copy);
  }
  void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const override {
    auto found = fds_.find(segment);
    CAIRN_CHECK(found != fds_.end(), "value log: a reader of {} has segment {}", directory_,
                segment);
    PreadAll(found->second, offset, size, out,
             fmt::format("segment {} in {}", segment, directory_));
  }

 private:
  std::string directory_;
  std::map<uint32_t, int> fds_;
};

class FileValueStorage final : public mvcc::ValueStorage {
 public:
  FileValueStorage(std::string directory, uint64_t instance)
      : directory_(std::move(directory)), instance_(instance) {}

  ~FileValueStorage() override {
    for (const auto& [segment, file] : files_) {
      ::close(file.fd);
      ::unlink(PathOf(segment).c_str());
    }
  }

  void Append(uint32_t segment, std::string_view bytes) override {
    auto found = files_.find(segment);
    if (found == files_.end()) {
      const std::string path = PathOf(segment);
      const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      CAIRN_CHECK(fd >= 0, "value log: cannot create {}: {}", path, std::strerror(errno));
      found = files_.emplace(segment, File{fd, 0}).first;
    }
    File& file = found->second;
    size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t result = ::pwrite(file.fd, bytes.data() + written, bytes.size() - written,
                                      static_cast<off_t>(file.size + written));
      if (result < 0 && errno == EINTR) continue;
      CAIRN_CHECK(result > 0, "value log: write to {} failed: {}", PathOf(segment),
                  result < 0 ? std::strerror(errno) : "no progress");
      written += static_cast<size_t>(result);
    }
    file.size += written;
  }

  void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const override {
    auto found = files_.find(segment);
    CAIRN_CHECK(found != files_.end() && offset + uint64_t{size} <= found->second.size,
                "value log: segment {} holds [{}, +{})", segment, offset, size);
    PreadAll(found->second.fd, offset, size, out, PathOf(segment));
  }

  std::unique_ptr<mvcc::ValueReader> OpenReader() const override {
    auto reader = std::make_unique<FileValueReader>(directory_);
    for (const auto& [segment, file] : files_) reader->Add(segment, file.fd);
    return reader;
  }

  void Remove(uint32_t segment) override {
    auto found = files_.find(segment);
    CAIRN_CHECK(found != files_.end(), "value log: removed segment {} exists", segment);
    ::close(found->second.fd);
    const std::string path = PathOf(segment);
    CAIRN_CHECK(::unlink(path.c_str()) == 0 || errno == ENOENT, "value log: cannot remove {}: {}",
                path, std::strerror(errno));
    files_.erase(found);
  }

 private:
  struct File {
    int fd;
    uint64_t size;
  };
  std::string PathOf(uint32_t segment) const {
    return JoinPath(directory_, fmt::format("{}-{:010}{}", instance_, segment, kValueFileSuffix));
  }

  std::string directory_;
  uint64_t instance_;
  std::map<uint32_t, File> files_;
};

}  // namespace

std::atomic<uint64_t> ValueFiles::next_instance_{1};

Result<std::shared_ptr<ValueFiles>> ValueFiles::Open(const std::string& directory) {
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
    return StatusFromErrno(errno, "mkdir", directory);
  }
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return StatusFromErrno(errno, "opendir", directory);
  Status status = Status::Ok();
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name(entry->d_name);
    if (!name.ends_with(kValueFileSuffix)) continue;  // Only what this module writes.
    const std::string path = JoinPath(directory, std::string(name));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      status = StatusFromErrno(errno, "unlink", path);
      break;
    }
  }
  ::closedir(dir);
  CAIRN_TRY(status);
  return std::shared_ptr<ValueFiles>(new ValueFiles(directory));
}

std::unique_ptr<mvcc::ValueStorage> ValueFiles::NewStorage() {
  return std::make_unique<FileValueStorage>(directory_,
                                            next_instance_.fetch_add(1, std::memory_order_relaxed));
}

}  // namespace cairn
