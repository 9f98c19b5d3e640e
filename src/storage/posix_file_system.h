// PosixFileSystem: FileSystem over Linux system calls.
//
// Errors map to Status codes a caller can act on: ENOSPC and EDQUOT are NoSpace, EACCES and EPERM
// are PermissionDenied, ENOENT is NotFound, EEXIST is AlreadyExists, everything else IoError. Each
// message names the operation and the path ("fdatasync /data/wal/...: Input/output error").
#pragma once

#include "storage/file_system.h"

namespace cairn {

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path,
                                                     OpenMode mode) override;
  Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) override;
  Result<std::vector<std::string>> ListDirectory(const std::string& directory) override;
  Result<FileKind> Stat(const std::string& path) override;
  Status CreateDirectory(const std::string& path) override;
  Status SyncDirectory(const std::string& directory) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
};

// The Status for a failed system call `operation` on `path` with errno `error_number`.
Status StatusFromErrno(int error_number, std::string_view operation, std::string_view path);

}  // namespace cairn
