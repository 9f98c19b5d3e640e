#include "storage/posix_file_system.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "storage/temp_directory.h"

namespace cairn {
namespace {

TEST(PosixFileSystem, AppendSyncReadBack) {
  TempDirectory dir;
  PosixFileSystem fs;
  auto file = fs.OpenWritable(dir.Join("a"), OpenMode::kCreateNew);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->Append("hello ").ok());
  ASSERT_TRUE((*file)->Append("world").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE(fs.SyncDirectory(dir.path()).ok());
  EXPECT_EQ(11u, (*file)->Size());
  EXPECT_EQ("hello world", ReadWholeFile(fs, dir.Join("a")).value());
  ASSERT_TRUE((*file)->Truncate(5).ok());
  ASSERT_TRUE((*file)->Append("!").ok());
  EXPECT_EQ("hello!", ReadWholeFile(fs, dir.Join("a")).value());
}

TEST(PosixFileSystem, WriteAtOverwritesInPlaceAndGrowsAtTheEnd) {
  TempDirectory dir;
  PosixFileSystem fs;
  auto file = fs.OpenWritable(dir.Join("a"), OpenMode::kCreateNew).value();
  ASSERT_TRUE(file->Append(std::string(8, '\0')).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->WriteAt(2, "ab").ok());
  EXPECT_EQ(8u, file->Size()) << "an overwrite leaves the length";
  ASSERT_TRUE(file->WriteAt(6, "cdef").ok());
  EXPECT_EQ(10u, file->Size());
  ASSERT_TRUE(file->WriteBack().ok());
  EXPECT_EQ(std::string("\0\0ab\0\0cdef", 10), ReadWholeFile(fs, dir.Join("a")).value());
  // Reopened for appending, a file's length is where writes may start.
  auto reopened = fs.OpenWritable(dir.Join("a"), OpenMode::kAppendExisting).value();
  EXPECT_EQ(10u, reopened->Size());
  ASSERT_TRUE(reopened->WriteAt(0, "z").ok());
  EXPECT_EQ('z', ReadWholeFile(fs, dir.Join("a")).value()[0]);
}

TEST(PosixFileSystem, CreateNewRefusesExisting) {
  TempDirectory dir;
  PosixFileSystem fs;
  ASSERT_TRUE(fs.OpenWritable(dir.Join("a"), OpenMode::kCreateNew).ok());
  EXPECT_EQ(StatusCode::kAlreadyExists,
            fs.OpenWritable(dir.Join("a"), OpenMode::kCreateNew).status().code());
}

TEST(PosixFileSystem, MissingFileIsNotFound) {
  TempDirectory dir;
  PosixFileSystem fs;
  Status status = fs.OpenReadable(dir.Join("nope")).status();
  EXPECT_EQ(StatusCode::kNotFound, status.code());
  EXPECT_NE(std::string::npos, status.message().find(dir.Join("nope")));
  EXPECT_EQ(FileKind::kMissing, fs.Stat(dir.Join("nope")).value());
}

TEST(PosixFileSystem, WriteFileAtomicallyReplaces) {
  TempDirectory dir;
  PosixFileSystem fs;
  ASSERT_TRUE(WriteFileAtomically(fs, dir.path(), "meta", "one").ok());
  ASSERT_TRUE(WriteFileAtomically(fs, dir.path(), "meta", "two").ok());
  EXPECT_EQ("two", ReadWholeFile(fs, dir.Join("meta")).value());
  EXPECT_EQ(std::vector<std::string>{"meta"}, fs.ListDirectory(dir.path()).value());
}

TEST(PosixFileSystem, CreateDirectoriesMakesParents) {
  TempDirectory dir;
  PosixFileSystem fs;
  ASSERT_TRUE(CreateDirectories(fs, dir.Join("x/y/z")).ok());
  EXPECT_EQ(FileKind::kDirectory, fs.Stat(dir.Join("x/y/z")).value());
}

TEST(PosixFileSystem, ErrnoMapsToStatusCodes) {
  EXPECT_EQ(StatusCode::kNoSpace, StatusFromErrno(ENOSPC, "write", "/x").code());
  EXPECT_EQ(StatusCode::kNoSpace, StatusFromErrno(EDQUOT, "write", "/x").code());
  EXPECT_EQ(StatusCode::kPermissionDenied, StatusFromErrno(EACCES, "open", "/x").code());
  EXPECT_EQ(StatusCode::kIoError, StatusFromErrno(EIO, "fdatasync", "/x").code());
  EXPECT_EQ("write /x: No space left on device", StatusFromErrno(ENOSPC, "write", "/x").message());
}

// Root ignores permission bits, so the test drops to an unprivileged effective uid for the one
// call that must be refused, and takes root back afterwards.
class EffectiveUser {
 public:
  explicit EffectiveUser(uid_t uid) : changed_(::geteuid() == 0) {
    if (changed_) CAIRN_CHECK(::seteuid(uid) == 0, "seteuid({}) works for root", uid);
  }
  ~EffectiveUser() {
    if (changed_) CAIRN_CHECK(::seteuid(0) == 0, "seteuid(0) restores root");
  }

 private:
  bool changed_;
};

TEST(PosixFileSystem, PermissionDeniedIsReportedClearly) {
  TempDirectory dir;
  PosixFileSystem fs;
  const std::string locked = dir.Join("locked");
  ASSERT_TRUE(fs.CreateDirectory(locked).ok());
  ASSERT_EQ(0, ::chmod(locked.c_str(), 0500));
  ASSERT_EQ(0, ::chmod(dir.path().c_str(), 0755));
  Status status;
  {
    EffectiveUser nobody(65534);
    status = fs.OpenWritable(locked + "/file", OpenMode::kCreateNew).status();
  }
  EXPECT_EQ(StatusCode::kPermissionDenied, status.code()) << status.ToString();
  EXPECT_NE(std::string::npos, status.message().find("Permission denied")) << status.ToString();
  EXPECT_NE(std::string::npos, status.message().find(locked)) << status.ToString();
}

}  // namespace
}  // namespace cairn
