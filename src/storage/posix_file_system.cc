#include "storage/posix_file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cairn {

Status StatusFromErrno(int error_number, std::string_view operation, std::string_view path) {
  std::string message = fmt::format("{} {}: {}", operation, path, std::strerror(error_number));
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(std::move(message));
    case EACCES:
    case EPERM:
    case EROFS:
      return Status::PermissionDenied(std::move(message));
    case ENOENT:
      return Status::NotFound(std::move(message));
    case EEXIST:
      return Status::AlreadyExists(std::move(message));
    default:
      return Status::IoError(std::move(message));
  }
}

namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override { return WriteAt(size_, data); }

  Status WriteAt(uint64_t offset, std::string_view data) override {
    CAIRN_CHECK(fd_ >= 0, "write only to an open file ({})", path_);
    CAIRN_CHECK(offset <= size_, "a write leaves no hole ({} > {} in {})", offset, size_, path_);
    size_t written = 0;
    Status status;
    while (written < data.size()) {
      const ssize_t result = ::pwrite(fd_, data.data() + written, data.size() - written,
                                      static_cast<off_t>(offset + written));
      if (result < 0) {
        if (errno == EINTR) continue;
        status = StatusFromErrno(errno, "write", path_);
        break;
      }
      written += static_cast<size_t>(result);
    }
    size_ = std::max<uint64_t>(size_, offset + written);
    return status;
  }

  Status WriteBack() override {
    CAIRN_CHECK(fd_ >= 0, "write back only an open file ({})", path_);
    if (::sync_file_range(fd_, 0, 0,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      return StatusFromErrno(errno, "sync_file_range", path_);
    }
    return Status::Ok();
  }

  Status Sync() override {
    CAIRN_CHECK(fd_ >= 0, "sync only an open file ({})", path_);
    if (::fdatasync(fd_) != 0) return StatusFromErrno(errno, "fdatasync", path_);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    CAIRN_CHECK(size <= size_, "truncate never grows a file ({} > {})", size, size_);
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return StatusFromErrno(errno, "ftruncate", path_);
    }
    size_ = size;
    return Status::Ok();
  }

  uint64_t Size() const override { return size_; }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return StatusFromErrno(errno, "close", path_);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;  // The file's length: where the next append goes (pwrite, not the file offset).
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, size_t size, char* destination) const override {
    size_t done = 0;
    while (done < size) {
      const ssize_t result =
          ::pread(fd_, destination + done, size - done, static_cast<off_t>(offset + done));
      if (result < 0) {
        if (errno == EINTR) continue;
        return StatusFromErrno(errno, "read", path_);
      }
      if (result == 0) break;
      done += static_cast<size_t>(result);
    }
    return done;
  }

  Result<uint64_t> Size() const override {
    struct stat info;
    if (::fstat(fd_, &info) != 0) return StatusFromErrno(errno, "stat", path_);
    return static_cast<uint64_t>(info.st_size);
  }

 private:
  std::string path_;
  int fd_;
};

}  // namespace

Result<std::unique_ptr<WritableFile>> PosixFileSystem::OpenWritable(const std::string& path,
                                                                   OpenMode mode) {
  int flags = O_WRONLY | O_CLOEXEC;
  switch (mode) {
    case OpenMode::kCreateNew: flags |= O_CREAT | O_EXCL; break;
    case OpenMode::kCreateOrTruncate: flags |= O_CREAT | O_TRUNC; break;
    case OpenMode::kAppendExisting: break;
  }
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return StatusFromErrno(errno, "open", path);
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    const int error_number = errno;
    ::close(fd);
    return StatusFromErrno(error_number, "stat", path);
  }
  return std::unique_ptr<WritableFile>(
      new PosixWritableFile(path, fd, static_cast<uint64_t>(info.st_size)));
}

Result<std::unique_ptr<ReadableFile>> PosixFileSystem::OpenReadable(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return StatusFromErrno(errno, "open", path);
  return std::unique_ptr<ReadableFile>(new PosixReadableFile(path, fd));
}

Result<std::vector<std::string>> PosixFileSystem::ListDirectory(const std::string& directory) {
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return StatusFromErrno(errno, "opendir", directory);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int error_number = errno;
  ::closedir(dir);
  if (error_number != 0) return StatusFromErrno(error_number, "readdir", directory);
  std::sort(names.begin(), names.end());
  return names;
}

Result<FileKind> PosixFileSystem::Stat(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return FileKind::kMissing;
    return StatusFromErrno(errno, "stat", path);
  }
  return S_ISDIR(info.st_mode) ? FileKind::kDirectory : FileKind::kFile;
}

Status PosixFileSystem::CreateDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return Status::Ok();
  if (errno == EEXIST) {
    CAIRN_ASSIGN_OR_RETURN(FileKind kind, Stat(path));
    if (kind == FileKind::kDirectory) return Status::Ok();
    return Status::AlreadyExists(fmt::format("mkdir {}: exists and is not a directory", path));
  }
  return StatusFromErrno(errno, "mkdir", path);
}

Status PosixFileSystem::SyncDirectory(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return StatusFromErrno(errno, "open", directory);
  Status status;
  if (::fsync(fd) != 0) status = StatusFromErrno(errno, "fsync", directory);
  ::close(fd);
  return status;
}

Status PosixFileSystem::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return StatusFromErrno(errno, "rename", fmt::format("{} -> {}", from, to));
  }
  return Status::Ok();
}

Status PosixFileSystem::RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return StatusFromErrno(errno, "unlink", path);
  return Status::Ok();
}

}  // namespace cairn
