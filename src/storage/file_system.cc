#include "storage/file_system.h"

#include <algorithm>

namespace cairn {

std::string JoinPath(std::string_view directory, std::string_view name) {
  std::string path(directory);
  if (!path.empty() && path.back() != '/') path.push_back('/');
  path.append(name);
  return path;
}

Status CreateDirectories(FileSystem& fs, const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    CAIRN_TRY(fs.CreateDirectory(path.substr(0, slash)));
  }
  return fs.CreateDirectory(path);
}

Result<std::string> ReadWholeFile(FileSystem& fs, const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, fs.OpenReadable(path));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string contents(size, '\0');
  CAIRN_ASSIGN_OR_RETURN(size_t read, file->ReadAt(0, size, contents.data()));
  if (read != size) {
    return Status::IoError(path + ": file shrank while being read");
  }
  return contents;
}

Status WriteFileDurably(FileSystem& fs, const std::string& path,
                        std::initializer_list<std::string_view> pieces,
                        uint64_t write_back_every_bytes) {
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                         fs.OpenWritable(path, OpenMode::kCreateOrTruncate));
  uint64_t unwritten = 0;  // Bytes appended since the last write-back.
  for (std::string_view piece : pieces) {
    while (!piece.empty()) {
      const uint64_t room =
          write_back_every_bytes == 0 ? piece.size() : write_back_every_bytes - unwritten;
      const std::string_view slice = piece.substr(0, std::min<uint64_t>(room, piece.size()));
      CAIRN_TRY(file->Append(slice));
      piece.remove_prefix(slice.size());
      unwritten += slice.size();
      if (write_back_every_bytes != 0 && unwritten >= write_back_every_bytes) {
        CAIRN_TRY(file->WriteBack());
        unwritten = 0;
      }
    }
  }
  CAIRN_TRY(file->Sync());
  return file->Close();
}

Status WriteFileAtomically(FileSystem& fs, const std::string& directory, const std::string& name,
                           std::string_view contents) {
  const std::string temporary_path = JoinPath(directory, name + ".tmp");
  CAIRN_TRY(WriteFileDurably(fs, temporary_path, {contents}));
  CAIRN_TRY(fs.Rename(temporary_path, JoinPath(directory, name)));
  return fs.SyncDirectory(directory);
}

}  // namespace cairn
