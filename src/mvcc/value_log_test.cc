#include "mvcc/value_log.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace cairn::mvcc {
namespace {

// A storage that counts what reaches it, over memory.
class CountingStorage final : public ValueStorage {
 public:
  explicit CountingStorage(int* appends, int* removes) : appends_(appends), removes_(removes) {}
  void Append(uint32_t segment, std::string_view bytes) override {
    ++*appends_;
    memory_.Append(segment, bytes);
  }
  void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const override {
    memory_.Read(segment, offset, size, out);
  }
  void Remove(uint32_t segment) override {
    ++*removes_;
    memory_.Remove(segment);
  }
  std::unique_ptr<ValueReader> OpenReader() const override { return memory_.OpenReader(); }

 private:
  int* appends_;
  int* removes_;
  MemoryValueStorage memory_;
};

class ValueLogTest : public ::testing::Test {
 protected:
  ValueLog MakeLog(size_t segment_bytes, size_t flush_bytes) {
    return ValueLog(std::make_unique<CountingStorage>(&appends_, &removes_),
                    ValueLogOptions{segment_bytes, flush_bytes});
  }
  static std::string ReadBack(const ValueLog& log, ValueRef ref) {
    std::string out = "stale";
    log.Read(ref, &out);
    return out;
  }
  int appends_ = 0;
  int removes_ = 0;
};

TEST_F(ValueLogTest, EmptyValueTakesNoSpace) {
  ValueLog log = MakeLog(100, 10);
  const ValueRef ref = log.Add("");
  EXPECT_EQ(ref, ValueRef{});
  EXPECT_EQ(ReadBack(log, ref), "");
  log.Release(ref);
  EXPECT_EQ(log.live_bytes(), 0u);
  EXPECT_EQ(log.garbage_bytes(), 0u);
}

TEST_F(ValueLogTest, ValuesReadBackFromHeadBufferAndStorage) {
  ValueLog log = MakeLog(1000, 10);
  const ValueRef a = log.Add("abc");  // Buffered.
  EXPECT_EQ(appends_, 0);
  EXPECT_EQ(ReadBack(log, a), "abc");
  const ValueRef b = log.Add("defghijk");  // 11 bytes buffered: flushed.
  EXPECT_EQ(appends_, 1);
  const ValueRef c = log.Add("xy");
  EXPECT_EQ(ReadBack(log, a), "abc");
  EXPECT_EQ(ReadBack(log, b), "defghijk");
  EXPECT_EQ(ReadBack(log, c), "xy");
  EXPECT_EQ(b.offset, 3u);
  EXPECT_EQ(c.offset, 11u);
  EXPECT_EQ(log.live_bytes(), 13u);
  std::string appended = "<";
  log.AppendTo(b, &appended);
  EXPECT_EQ(appended, "<defghijk");
}

TEST_F(ValueLogTest, SegmentsSealWithWholeValuesAndEmptyOnesAreRemoved) {
  ValueLog log = MakeLog(10, 100);
  const ValueRef a = log.Add("12345678");
  const ValueRef b = log.Add("abcdef");  // Crosses 10: segment 0 sealed with both values.
  const ValueRef c = log.Add("z");
  EXPECT_EQ(a.segment, 0u);
  EXPECT_EQ(b.segment, 0u);
  EXPECT_EQ(c.segment, 1u);
  EXPECT_EQ(c.offset, 0u);
  EXPECT_EQ(appends_, 1) << "sealing writes the head buffer out";
  const ValueRef big = log.Add(std::string(50, 'B'));  // Larger than a segment: one to itself.
  EXPECT_EQ(big.segment, 1u);
  EXPECT_EQ(ReadBack(log, big), std::string(50, 'B'));
  const ValueRef d = log.Add("d");
  EXPECT_EQ(d.segment, 2u);
  EXPECT_EQ(log.segment_count(), 3u);

  log.Release(a);
  EXPECT_EQ(log.garbage_bytes(), 8u);
  EXPECT_EQ(removes_, 0);
  log.Release(b);
  EXPECT_EQ(removes_, 1) << "a sealed segment with nothing live goes at once";
  EXPECT_FALSE(log.Holds(0));
  EXPECT_EQ(log.garbage_bytes(), 0u);
  EXPECT_EQ(ReadBack(log, c), "z");
  log.Release(d);  // The head segment stays, even empty.
  EXPECT_TRUE(log.Holds(2));
  EXPECT_EQ(log.garbage_bytes(), 1u);
}

TEST_F(ValueLogTest, SparseSegmentsMakeRelocationDue) {
  ValueLog wide = MakeLog(12, 100);
  std::vector<ValueRef> w;
  for (int i = 0; i < 12; ++i) w.push_back(wide.Add("1234"));  // Three values per segment.
  EXPECT_TRUE(wide.SparseSegments().empty());
  wide.Release(w[0]);
  EXPECT_TRUE(wide.SparseSegments().empty()) << "2 of 3 live";
  wide.Release(w[1]);  // Segment 0: 4 of 12 live: sparse, 8 bytes of sparse garbage.
  EXPECT_EQ(wide.SparseSegments(), std::vector<uint32_t>{0});
  EXPECT_FALSE(wide.RelocationDue()) << "8 < one segment's worth";
  wide.Release(w[3]);
  EXPECT_FALSE(wide.RelocationDue()) << "segment 1 is 2/3 live, not sparse";
  wide.Release(w[4]);  // Segment 1 sparse: 8 + 8 >= 12.
  EXPECT_EQ(wide.SparseSegments(), (std::vector<uint32_t>{0, 1}));
  EXPECT_TRUE(wide.RelocationDue());
  // Moving the live values out empties them.
  for (int i : {2, 5}) {
    const std::string bytes = ReadBack(wide, w[i]);
    const ValueRef moved = wide.Add(bytes);
    wide.Release(w[i]);
    w[i] = moved;
    EXPECT_EQ(ReadBack(wide, moved), "1234");
  }
  EXPECT_FALSE(wide.Holds(0));
  EXPECT_FALSE(wide.Holds(1));
  EXPECT_FALSE(wide.RelocationDue());
  EXPECT_EQ(wide.live_bytes(), 8u * 4u);
}

TEST_F(ValueLogTest, MemoryStorageRefusesReadsPastItsBytes) {
  MemoryValueStorage storage;
  storage.Append(3, "abc");
  char out[3];
  storage.Read(3, 1, 2, out);
  EXPECT_EQ(std::string(out, 2), "bc");
  EXPECT_DEATH(storage.Read(3, 2, 2, out), "holds");
  EXPECT_DEATH(storage.Read(4, 0, 1, out), "holds");
}

TEST_F(ValueLogTest, AReadMaySpanAppends) {
  MemoryValueStorage storage;
  storage.Append(3, "abc");
  storage.Append(3, "d");
  storage.Append(3, "efg");
  std::string out(6, '?');
  storage.Read(3, 1, 6, out.data());
  EXPECT_EQ("bcdefg", out);
  const std::unique_ptr<ValueReader> reader = storage.OpenReader();
  storage.Append(3, "h");  // Later appends need not be visible to the reader, and are not here.
  reader->Read(3, 2, 5, out.data());
  EXPECT_EQ("cdefg", out.substr(0, 5));
  EXPECT_DEATH(reader->Read(3, 6, 2, out.data()), "holds");
}

}  // namespace
}  // namespace cairn::mvcc
