#include "storage/data_directory.h"

#include <fmt/format.h>

#include <algorithm>

namespace cairn {
namespace {

constexpr std::string_view kMarkerFirstLine = "cairn data directory\n";

std::string MarkerContents(uint32_t version) {
  return fmt::format("{}format_version {}\n", kMarkerFirstLine, version);
}

}  // namespace

Result<DataDirectory> DataDirectory::Open(FileSystem& fs, const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("the data directory path is empty");
  CAIRN_ASSIGN_OR_RETURN(FileKind kind, fs.Stat(path));
  if (kind == FileKind::kFile) {
    return Status::InvalidArgument(
        fmt::format("data directory {} is a file, not a directory", path));
  }
  if (kind == FileKind::kMissing) CAIRN_TRY(CreateDirectories(fs, path));

  const std::string marker_path = JoinPath(path, kMarkerName);
  CAIRN_ASSIGN_OR_RETURN(FileKind marker_kind, fs.Stat(marker_path));
  if (marker_kind == FileKind::kFile) {
    CAIRN_ASSIGN_OR_RETURN(std::string marker, ReadWholeFile(fs, marker_path));
    unsigned version = 0;
    if (!marker.starts_with(kMarkerFirstLine) ||
        std::sscanf(marker.c_str() + kMarkerFirstLine.size(), "format_version %u", &version) != 1) {
      return Status::Corruption(
          fmt::format("{}: the CAIRN marker file is damaged (expected '{}format_version N')",
                      marker_path, kMarkerFirstLine));
    }
    if (version > kFormatVersion) {
      return Status::Unsupported(fmt::format(
          "data directory {} has format version {}, newer than this build reads (up to {}); "
          "run a newer Cairn",
          path, version, kFormatVersion));
    }
    return DataDirectory(path, /*created=*/false);
  }

  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDirectory(path));
  const std::string leftover = std::string(kMarkerName) + ".tmp";
  std::erase(names, leftover);  // A crash while marking a new directory.
  if (!names.empty()) {
    return Status::InvalidArgument(fmt::format(
        "{} is not a Cairn data directory: it holds {} entries (first: '{}') but no {} marker "
        "file; refusing to use it (choose an empty or new directory with --data-dir)",
        path, names.size(), names.front(), kMarkerName));
  }
  CAIRN_TRY(WriteFileAtomically(fs, path, kMarkerName, MarkerContents(kFormatVersion)));
  return DataDirectory(path, /*created=*/true);
}

}  // namespace cairn
